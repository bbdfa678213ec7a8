"""Which answer sets to benchmark: the default set, or the ones given on the command line."""

from typing import Any

from template import QUESTIONS, choices

# Every process model, each database, and slim against full, with everything else at its
# default, so that each row differs from the first in one answer only.
DEFAULT_SET: list[dict[str, Any]] = [
    {},  # the defaults: uv, uvicorn, python:3.13-slim-trixie, SQLite, separate migrations
    {"database": "postgresql"},
    {"process_model": "uvicorn-workers"},
    {"process_model": "gunicorn"},
    {"process_model": "official-image"},
    # Supported, but the base image cannot exist on this machine: reported as skipped.
    {"base_variant": "alpine"},
    {"python_version": "3.12"},
]
# Answers of the default set that change the base image only, not the server or the code:
# their image, builds and start are measured, their load would repeat the defaults'.
IMAGE_ONLY: list[dict[str, Any]] = [{"base_variant": "full"}]

# The answers that render the most files: pip-tools' four requirement files, Gunicorn's
# configuration, the entrypoint script, PostgreSQL's settings test and the migrations.
LARGEST: dict[str, Any] = {
    "dependency_tool": "pip",
    "process_model": "gunicorn",
    "workers": "auto",
    "migrations": True,
    "database": "postgresql",
    "migration_step": "entrypoint",
    "proxy_headers": True,
}


def parse(text: str) -> dict[str, Any]:
    """`process_model=gunicorn,base_variant=full` as Copier data, typed like copier.yml."""
    answers: dict[str, Any] = {}
    for pair in filter(None, (part.strip() for part in text.split(","))):
        question, _, value = pair.partition("=")
        if question not in QUESTIONS:
            raise SystemExit(f"unknown question {question!r}; known: {', '.join(QUESTIONS)}")
        kind = QUESTIONS[question]["type"]
        if kind == "bool":
            answers[question] = value.lower() in ("1", "true", "yes")
        elif kind == "int":
            answers[question] = int(value)
        else:
            answers[question] = value
    return answers


def with_defaults(answers: dict[str, Any]) -> dict[str, Any]:
    """The answers that matter for a label, with copier.yml's defaults filled in."""
    full = {
        "dependency_tool": "uv",
        "process_model": "uvicorn",
        "base_variant": "slim",
        "migrations": True,
        "database": "sqlite",
        **answers,
    }
    full.setdefault(
        "python_version", "3.11" if full["process_model"] == "official-image" else "3.13"
    )
    if full["process_model"] != "uvicorn":
        full.setdefault("workers", "auto")
    return full


def label(answers: dict[str, Any]) -> str:
    full = with_defaults(answers)
    database = full["database"] if full["migrations"] else "nodb"
    parts = [full["process_model"], full["base_variant"], full["python_version"]]
    parts += [full["dependency_tool"], database]
    if full["process_model"] != "uvicorn" and full["workers"] != "auto":
        parts.append(f"w{full['workers']}")
    return "-".join(str(part) for part in parts)


def check_choices(answers: dict[str, Any]) -> None:
    for question, value in answers.items():
        spec = QUESTIONS[question]
        if "choices" in spec and value not in choices(question):
            raise SystemExit(f"{question}={value} is not one of {choices(question)}")
