import logging


def configure_logging(level: str) -> None:
    # Uvicorn and Gunicorn configure their own loggers; this covers the application's.
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
