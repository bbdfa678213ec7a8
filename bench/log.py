"""Progress on stderr, with the minutes since the run began."""

import sys
import time

STARTED = time.monotonic()


def minutes() -> float:
    return (time.monotonic() - STARTED) / 60


def log(message: str) -> None:
    print(f"[{minutes():5.1f} min] {message}", file=sys.stderr, flush=True)
