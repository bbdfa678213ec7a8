"""A PostgreSQL server for the benchmark (the postgres stand-in image), started when an
answer set or a baseline first needs one, with a fresh database for each server."""

import time
from typing import Any

from template import Container, run

IMAGE = "postgres:17"
USER = PASSWORD = "bench"


class Postgres:
    """One server per run; `database()` creates an empty database and returns the run
    arguments that point an app at it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.container: Container | None = None
        self.databases = 0

    def start(self) -> None:
        env = ["--env", f"POSTGRES_USER={USER}", "--env", f"POSTGRES_PASSWORD={PASSWORD}"]
        self.container = Container(IMAGE, "--name", self.name, *env)
        deadline = time.monotonic() + 60
        # Over TCP: while the image initialises, its temporary server listens on the socket.
        ready = ["pg_isready", "--host=127.0.0.1", f"--username={USER}"]
        while run(["docker", "exec", self.container.id, *ready], check=False).returncode:
            if time.monotonic() > deadline:
                raise AssertionError(f"{IMAGE} did not accept connections within 60 s")
            time.sleep(0.5)

    def __enter__(self) -> "Postgres":
        return self

    def __exit__(self, *exc: object) -> None:
        if self.container:
            self.container.__exit__(*exc)

    def database(self) -> dict[str, Any]:
        """A new, empty database: its URL (the generated app's async form) and the
        environment that gives it to an app, as the URL and as its parts."""
        if self.container is None:
            self.start()
        assert self.container is not None
        self.databases += 1
        name = f"bench{self.databases}"
        # Over the socket, which the image trusts: TCP would ask for the password.
        run(["docker", "exec", self.container.id, "createdb", f"--username={USER}", name])
        host = self.container.ip
        url = f"postgresql+asyncpg://{USER}:{PASSWORD}@{host}:5432/{name}"
        settings = {
            "DATABASE_URL": url,
            "DATABASE_HOST": host,
            "DATABASE_PORT": "5432",
            "DATABASE_NAME": name,
            "DATABASE_USER": USER,
            "DATABASE_PASSWORD": PASSWORD,
        }
        return {
            "url": url,
            "env": [arg for k, v in settings.items() for arg in ("--env", f"{k}={v}")],
        }
