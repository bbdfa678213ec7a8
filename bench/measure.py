"""The measurements, one function each. Everything Docker creates here is named `bench-...`
and removed again by the caller (see Cleanup)."""

import json
import os
import platform
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from importlib.metadata import version
from pathlib import Path
from typing import Any

from bench.stats import summarize
from template import (
    HARDENED_RUN_ARGS,
    LOCAL_HOST,
    ROOT,
    Container,
    build,
    image_size,
    process_table,
    run,
    template_snapshot,
    wait_for_health,
    wait_for_http,
)

BASELINE_DIR = Path(__file__).resolve().parent / "baseline"
PIP_LOCKS = ROOT / "includes" / "locks" / "pip"
PORT = 8000
# Prefix of every image, container and volume the benchmark creates. The process id
# alone is not unique: other runs on the same Docker engine may come from other PID
# namespaces (containers, CI jobs), where the same ids are handed out.
PREFIX = f"bench-{os.getpid()}-{secrets.token_hex(2)}"


class Cleanup:
    """Remembers what the run created, and removes exactly that at the end."""

    def __init__(self) -> None:
        self.tags: set[str] = set()
        self.untagged: set[str] = set()
        self.volumes: set[str] = set()

    def image(self, tag: str) -> None:
        # A rebuild moves the tag and may leave the previous image behind, untagged.
        self.untagged.add(image_id(tag))
        self.tags.add(tag)

    def close(self) -> None:
        for volume in self.volumes:
            subprocess.run(["docker", "volume", "rm", "--force", volume], capture_output=True)
        for tag in self.tags:
            subprocess.run(["docker", "image", "rm", tag], capture_output=True)
        # An ID only if no tag names it any more: an identical build (same layers, so the
        # same ID) by another run still tagged is that run's, and removing it by ID
        # would take it from under that run.
        for image in self.untagged:
            if not image_tags(image):
                subprocess.run(["docker", "image", "rm", image], capture_output=True)


# The machine ------------------------------------------------------------------------------


def load_average() -> list[float]:
    return [float(value) for value in Path("/proc/loadavg").read_text().split()[:3]]


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    memory = re.search(r"^MemTotal:\s*(\d+) kB", Path("/proc/meminfo").read_text(), re.M)
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model.group(1).strip() if model else "unknown",
        "memory_gb": round(int(memory.group(1)) / 1e6, 1) if memory else None,
        "kernel": platform.release(),
    }


def pip_lock(variant: str) -> str:
    """The name of the template's pip lock for `variant` (`postgresql-gunicorn`): its
    variant without observability packages where the locks are split by them."""
    for name in (f"{variant}-plain.txt", f"{variant}.txt"):
        if (PIP_LOCKS / name).exists():
            return name
    raise FileNotFoundError(f"no pip lock for {variant} in {PIP_LOCKS}")


def locked_version(package: str, lock: str = "none-gunicorn") -> str:
    """The version the template's locks pin (all lock variants pin the same ones)."""
    text = (PIP_LOCKS / pip_lock(lock)).read_text()
    match = re.search(rf"^{re.escape(package)}==(\S+)", text, re.M)
    return match.group(1) if match else "unknown"


def versions() -> dict[str, str]:
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    return {
        "docker": run(["docker", "version", "--format", "{{.Server.Version}}"]).stdout.strip(),
        "buildx": run(["docker", "buildx", "version"]).stdout.split()[1],
        "python (host)": platform.python_version(),
        "copier": version("copier"),
        "wrk": (wrk.stdout + wrk.stderr).split()[1],
        **{name: locked_version(name) for name in ("fastapi", "uvicorn", "gunicorn")},
        **{name: locked_version(name, "postgresql-gunicorn") for name in ("sqlalchemy", "asyncpg")},
        "aiosqlite": locked_version("aiosqlite", "sqlite-gunicorn"),
    }


# copier copy -----------------------------------------------------------------------------


def copier_copy(answers: dict[str, Any], repetitions: int, work: Path) -> dict[str, Any]:
    """Wall time of the `copier copy` command line, as a user runs it (Python start-up
    included), from a plain directory so that no git clone is timed."""
    source = template_snapshot(work)
    data = [arg for key, value in answers.items() for arg in ("--data", f"{key}={value}")]
    seconds = []
    for _ in range(repetitions):
        destination = Path(tempfile.mkdtemp(dir=work)) / "project"
        command = [sys.executable, "-m", "copier", "copy", "--defaults", "--quiet", *data]
        start = time.monotonic()
        run([*command, str(source), str(destination)])
        seconds.append(time.monotonic() - start)
    files = [path for path in destination.rglob("*") if path.is_file()]
    return {
        "answers": answers,
        "seconds": summarize(seconds),
        "files": len(files),
        "bytes": sum(path.stat().st_size for path in files),
    }


# Images and builds -----------------------------------------------------------------------


def image_id(image: str) -> str:
    return run(["docker", "image", "inspect", "--format", "{{.Id}}", image]).stdout.strip()


def image_tags(image: str) -> list[str]:
    """The tags naming an image (none once it is gone)."""
    command = ["docker", "image", "inspect", "--format", "{{json .RepoTags}}", image]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        return []
    return json.loads(result.stdout) or []


def venv_bytes(image: str) -> int:
    command = ["docker", "run", "--rm", "--entrypoint", "du", image, "-sb", "/opt/venv"]
    return int(run(command).stdout.split()[0])


def image_sizes(tag: str, base: str) -> dict[str, Any]:
    runtime, base_size, venv = image_size(tag), image_size(base), venv_bytes(tag)
    return {
        "base_image": base,
        "base_bytes": base_size,
        "runtime_bytes": runtime,
        "overhead_bytes": runtime - base_size,
        "venv_bytes": venv,
        "overhead_over_venv": (runtime - base_size) / venv,
    }


def timed_build(
    project: Path, tag: str, cold: bool, dockerfile: Path | None = None
) -> tuple[float, str]:
    """One `docker build` of the runtime image (of the project's own Dockerfile, or of
    `dockerfile` in the project's context): its seconds and BuildKit's log."""
    start = time.monotonic()
    if dockerfile is None:
        log = build(project, tag, no_cache=cold)
    else:
        command = ["docker", "build", "--progress=plain", "--tag", tag, "--file", str(dockerfile)]
        result = run([*command, *(["--no-cache"] if cold else []), "."], cwd=project)
        log = result.stdout + result.stderr
    return time.monotonic() - start, log


def dependency_steps(log: str) -> tuple[int, int]:
    """(dependency steps, of which reused from the cache): the steps of the `build` stage,
    where the dependencies are installed, and the runtime stage's copy of /opt/venv."""
    steps = [
        line.split()[0]
        for line in log.splitlines()
        # FROM is resolved, never reported as CACHED; BuildKit pads step numbers.
        if re.match(r"^#\d+ \[build +\d+/\d+\] (?!FROM)", line)
        or re.match(r"^#\d+ \[runtime +\d+/\d+\] COPY --from=build ", line)
    ]
    reused = [number for number in steps if f"\n{number} CACHED" in log]
    return len(steps), len(reused)


def builds(
    project: Path,
    tag: str,
    package: str,
    repetitions: dict[str, int],
    cleanup: Cleanup,
    dockerfile: Path | None = None,
) -> dict[str, Any]:
    """Cold builds, warm builds (nothing changed) and builds after a one-line code change."""
    cold, warm, change = [], [], []
    for _ in range(repetitions["cold"]):
        seconds, _ = timed_build(project, tag, cold=True, dockerfile=dockerfile)
        cold.append(seconds)
        cleanup.image(tag)
    for _ in range(repetitions.get("warm", 0)):
        seconds, _ = timed_build(project, tag, cold=False, dockerfile=dockerfile)
        warm.append(seconds)
    changed = Path(tempfile.mkdtemp(dir=project.parent)) / "changed"
    shutil.copytree(project, changed, symlinks=True)
    main = changed / package / "main.py"
    original = main.read_text()
    reuse = []
    for index in range(repetitions["change"]):
        # A different line each time, so every repetition is a real change.
        main.write_text(f"{original}\n# benchmark change {index} {time.time_ns()}\n")
        seconds, log = timed_build(changed, f"{tag}-changed", cold=False, dockerfile=dockerfile)
        change.append(seconds)
        reuse.append(dependency_steps(log))
        cleanup.image(f"{tag}-changed")
    shutil.rmtree(changed.parent)
    return {
        "cold_seconds": summarize(cold),
        "warm_seconds": summarize(warm) if warm else None,
        "code_change_seconds": summarize(change),
        "dependency_steps": reuse[-1][0],
        "dependency_steps_reused": min(reused for _, reused in reuse),
        "code_change_over_cold": summarize(change)["median"] / summarize(cold)["median"],
    }


# Containers ------------------------------------------------------------------------------


def run_args(answers: dict[str, Any], data: list[str] | None = None) -> list[str]:
    """How the compose file runs the app: read-only, no capabilities, its data on a volume
    or in a database (`data`), or, where nothing needs to persist, SQLite on a tmpfs.
    ALLOWED_HOSTS admits the container's address, which the benchmark's clients use."""
    args = [*HARDENED_RUN_ARGS, "--env", "ALLOWED_HOSTS=*"]
    if data is not None:
        return args + data
    if answers.get("migrations", True) and answers.get("database", "sqlite") == "sqlite":
        args += ["--tmpfs", "/app/data:uid=10001,gid=10001"]
    return args


def cold_starts(image: str, args: list[str], repetitions: int, name: str) -> dict[str, Any]:
    """From `docker run` to the first 200 from /healthz; once also to Docker's `healthy`
    (None: the image has no HEALTHCHECK, or it never passed)."""
    seconds = []
    healthy = None
    for index in range(repetitions):
        start = time.monotonic()
        with Container(image, "--name", f"{name}-{index}", *args) as container:
            wait_for_http(f"http://{container.ip}:{PORT}/healthz", timeout=60)
            seconds.append(time.monotonic() - start)
            if index == 0 and has_healthcheck(image):
                status = wait_for_health(container.id, timeout=90)
                healthy = time.monotonic() - start if status == "healthy" else None
    return {"first_200_seconds": summarize(seconds), "healthy_seconds": healthy}


def has_healthcheck(image: str) -> bool:
    command = ["docker", "image", "inspect", "--format", "{{json .Config.Healthcheck}}", image]
    return run(command).stdout.strip() not in ("null", "")


def memory(container: str) -> dict[str, Any]:
    """Resident memory of the container's server processes. RSS counts pages that forked
    workers share with their parent in each of them; PSS divides shared pages among them,
    so the PSS of all processes adds up to what the container really holds."""
    rows = process_table(container)
    servers = [row for row in rows if "resource_tracker" not in row["cmdline"]]
    if len(servers) == 1:
        supervisor, workers = None, servers
    else:
        supervisor = next(row for row in servers if row["pid"] == 1)
        workers = [row for row in servers if row["pid"] != 1]
    return {
        "workers": len(workers),
        "worker_rss_mb": [row["rss_kb"] / 1024 for row in workers],
        "worker_pss_mb": [row["pss_kb"] / 1024 for row in workers if row["pss_kb"] is not None],
        "supervisor_rss_mb": supervisor["rss_kb"] / 1024 if supervisor else None,
        "total_pss_mb": sum(row["pss_kb"] or 0 for row in rows) / 1024,
        "processes": [row["cmdline"][:120] for row in rows],
    }


ITEM = {"name": "benchmark", "description": "read under load"}


def create_item(url: str) -> int:
    request = urllib.request.Request(
        f"{url}/items/",
        data=json.dumps(ITEM).encode(),
        headers={"Content-Type": "application/json", **LOCAL_HOST},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return int(json.load(response)["id"])


def wait_until_serving(url: str, timeout: float = 60) -> None:
    wait_for_http(f"{url}/healthz", timeout=timeout)
    # Supervisors start their workers one after another: give the last one time to boot.
    time.sleep(2)
