"""Regenerate the lock snapshots in includes/locks/ that generated projects start from.

A generated project must install from a lock without running a lock command first, so the
template ships one lock per dependency tool and per dependency set (`lock_variant` in
copier.yml). This script renders the template for each of them, runs the tool's own lock
command in the render, and stores the result with the project name as a Jinja placeholder.

    make relock            # all tools
    make relock TOOLS=uv   # one tool
"""

import argparse
import concurrent.futures
import itertools
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import copier

ROOT = Path(__file__).resolve().parents[1]
LOCKS = ROOT / "includes" / "locks"
PLACEHOLDER_SLUG = "lock-placeholder"
DATABASES = {
    "none": {"migrations": False},
    "sqlite": {"migrations": True, "database": "sqlite"},
    "postgresql": {"migrations": True, "database": "postgresql"},
}
SERVERS = {"uvicorn": "uvicorn", "gunicorn": "gunicorn"}
OBSERVABILITY = {
    "plain": {"metrics": False, "tracing": False},
    "metrics": {"metrics": True, "tracing": False},
    "tracing": {"metrics": False, "tracing": True},
    "metrics-tracing": {"metrics": True, "tracing": True},
}
LOCK_FILES = {
    "uv": {"uv.lock": ".lock"},
    "poetry": {"poetry.lock": ".lock"},
    "pip": {"requirements.txt": ".txt", "requirements-dev.txt": "-dev.txt"},
}
PIP_COMPILE = [
    sys.executable,
    "-m",
    "piptools",
    "compile",
    "--quiet",
    "--generate-hashes",
    "--allow-unsafe",
    "--strip-extras",
    "--no-header",
    # This machine's pip configuration (local mirrors) must not end up in shipped locks.
    "--no-emit-index-url",
    "--no-emit-find-links",
]


def lock_commands(tool: str) -> list[list[str]]:
    if tool == "uv":
        return [["uv", "lock"]]
    if tool == "poetry":
        return [["poetry", "lock"]]
    return [
        [*PIP_COMPILE, "--output-file", "requirements.txt", "requirements.in"],
        [*PIP_COMPILE, "--output-file", "requirements-dev.txt", "requirements-dev.in"],
    ]


def ensure_placeholders(tool: str, variant: str) -> None:
    """A first run has no snapshot to include yet; the render only needs the file to exist."""
    for suffix in LOCK_FILES[tool].values():
        path = LOCKS / tool / f"{variant}{suffix}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()


def relock(tool: str, database: str, server: str, observability: str, workdir: Path) -> None:
    variant = f"{database}-{server}-{observability}"
    ensure_placeholders(tool, variant)
    dst = workdir / f"{tool}-{variant}"
    copier.run_copy(
        str(ROOT),
        dst,
        data={
            "project_name": PLACEHOLDER_SLUG,
            "dependency_tool": tool,
            "process_model": SERVERS[server],
            **DATABASES[database],
            **OBSERVABILITY[observability],
        },
        defaults=True,
        quiet=True,
        vcs_ref="HEAD",
    )
    for name in LOCK_FILES[tool]:
        (dst / name).unlink(missing_ok=True)
    env = {**os.environ, "UV_PYTHON": os.environ.get("UV_PYTHON", sys.executable)}
    for command in lock_commands(tool):
        subprocess.run(command, cwd=dst, env=env, check=True)
    for name, suffix in LOCK_FILES[tool].items():
        text = (dst / name).read_text()
        if "{{" in text or "{%" in text or "{#" in text:
            raise SystemExit(f"{tool} {variant}: the lock contains Jinja syntax; escape it first")
        (LOCKS / tool / f"{variant}{suffix}").write_text(
            text.replace(PLACEHOLDER_SLUG, "{{ project_slug }}")
        )
    print(f"locked {tool} {variant}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tools", nargs="*", help=f"any of {list(LOCK_FILES)} (default: all)")
    parser.add_argument("--jobs", type=int, default=4, help="locks resolved at once (default: 4)")
    args = parser.parse_args()
    if unknown := set(args.tools) - set(LOCK_FILES):
        parser.error(f"unknown tools {sorted(unknown)}; choose from {list(LOCK_FILES)}")
    variants = itertools.product(args.tools or list(LOCK_FILES), DATABASES, SERVERS, OBSERVABILITY)
    # Resolving waits on the package index, not the CPU; each render has its own folder and
    # runs in its own process, because Copier changes the working directory.
    with (
        tempfile.TemporaryDirectory() as workdir,
        concurrent.futures.ProcessPoolExecutor(args.jobs) as pool,
    ):
        futures = [pool.submit(relock, *variant, Path(workdir)) for variant in variants]
        for future in concurrent.futures.as_completed(futures):
            future.result()


if __name__ == "__main__":
    main()
