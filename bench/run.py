"""What every section of a benchmark run shares: its settings, its scratch directory, the
Docker objects it made (removed at the end), the PostgreSQL server and the images built."""

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import answers as answer_sets
from bench import measure
from bench.load import LoadSettings
from bench.postgres import Postgres
from template import build, image_exists, render, run

PROBE_ENV = ["--env", "ALLOWED_HOSTS=*"]


@dataclass(frozen=True)
class Settings:
    repetitions: dict[str, int]
    # The answer sets' load phases (each server in its own process model).
    load: LoadSettings
    # The comparisons whose ratios are targets: more runs, so that their median holds.
    compare: LoadSettings

    def as_json(self, quick: bool) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "quick": quick}


@dataclass
class Data:
    """Where a server keeps its items: its run arguments and the URL they give the app."""

    args: list[str]
    url: str


@dataclass
class Run:
    settings: Settings
    work: Path
    cleanup: measure.Cleanup = field(default_factory=measure.Cleanup)
    postgres: Postgres = field(default_factory=lambda: Postgres(f"{measure.PREFIX}-postgres"))
    # Answer-set label -> image tag, built once (and timed) by the answer set's section.
    images: dict[str, str] = field(default_factory=dict)
    baselines: dict[str, str] = field(default_factory=dict)  # base image -> baseline image

    def project(self, answers: dict[str, Any]) -> Path:
        return render(answers, self.work)

    def image(self, answers: dict[str, Any]) -> str:
        """The answer set's runtime image, built now unless a section already did."""
        label = answer_sets.label(answers)
        if label not in self.images:
            tag = f"{measure.PREFIX}-{label}"
            build(self.project(answers), tag)
            self.cleanup.image(tag)
            self.images[label] = tag
        return self.images[label]

    def baseline(self, base: str) -> str:
        """The bare apps (`bench/baseline/`) on `base`, built once per run (again if the
        image went missing: the Docker engine may be shared)."""
        if base not in self.baselines or not image_exists(self.baselines[base]):
            tag = f"{measure.PREFIX}-baseline-{len(self.baselines)}"
            command = ["docker", "build", "--quiet", "--tag", tag]
            command += ["--build-arg", f"BASE_IMAGE={base}"]
            aiosqlite = measure.locked_version("aiosqlite", "sqlite-gunicorn")
            command += ["--build-arg", f"AIOSQLITE_VERSION={aiosqlite}"]
            command += ["--build-arg", f"LOCK={measure.pip_lock('postgresql-gunicorn')}"]
            command += ["--build-context", f"locks={measure.PIP_LOCKS}"]
            run([*command, str(measure.BASELINE_DIR)])
            self.cleanup.image(tag)
            self.baselines[base] = tag
        return self.baselines[base]

    def data(
        self, database: str, image: str, package: str, name: str, mount: str = "/app/data"
    ) -> Data:
        """A database at the generated app's current schema, migrated by `image` as the
        compose stack's one-shot migrate service does: an SQLite file on a new volume
        (mounted at `mount`), or a new PostgreSQL database."""
        migrate = ["docker", "run", "--rm", "--entrypoint", "python"]
        if database == "postgresql":
            created = self.postgres.database()
            run([*migrate, *created["env"], image, "-m", f"{package}.db.migrate"])
            return Data(created["env"], created["url"])
        run(["docker", "volume", "create", name])
        self.cleanup.volumes.add(name)
        run([*migrate, "--volume", f"{name}:/app/data", image, "-m", f"{package}.db.migrate"])
        return Data(["--volume", f"{name}:{mount}"], f"sqlite+aiosqlite:///{mount}/app.db")

    def close(self) -> None:
        self.postgres.__exit__(None, None, None)
        self.cleanup.close()
