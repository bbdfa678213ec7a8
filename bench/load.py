"""Load from wrk, a separate process on the host, against a container's address."""

import json
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.stats import summarize
from template import Container, run, wait_for_http

LUA = Path(__file__).resolve().parent / "wrk_report.lua"


@dataclass(frozen=True)
class LoadSettings:
    seconds: int  # per repetition
    repetitions: int
    warmup_seconds: int
    connections: int
    threads: int


def require_wrk() -> None:
    if not shutil.which("wrk"):
        raise SystemExit(
            "wrk is not installed: the benchmark needs it as its load generator "
            "(Debian/Ubuntu: sudo apt-get install -y wrk)"
        )


def wrk_command(url: str, settings: LoadSettings, seconds: int) -> list[str]:
    return [
        "wrk",
        f"--threads={settings.threads}",
        f"--connections={settings.connections}",
        f"--duration={seconds}s",
        "--timeout=5s",
        f"--script={LUA}",
        url,
    ]


def parse(output: str) -> dict[str, Any]:
    """The JSON line that wrk_report.lua prints after wrk's own summary."""
    line = next(line for line in reversed(output.splitlines()) if line.startswith("{"))
    return json.loads(line)


def wrk(url: str, settings: LoadSettings, seconds: int) -> dict[str, Any]:
    command = wrk_command(url, settings, seconds)
    return parse(run(command, timeout=seconds + 60).stdout)


def throughput(urls: dict[str, str], settings: LoadSettings) -> dict[str, dict[str, Any]]:
    """Requests per second and latency percentiles of several servers, each warmed up
    first. Their runs alternate, so that whatever else loads the machine meanwhile weighs
    on all of them alike and their ratios stay fair."""
    for url in urls.values():
        wrk(url, settings, settings.warmup_seconds)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in urls}
    for _ in range(settings.repetitions):
        for name, url in urls.items():
            runs[name].append(wrk(url, settings, settings.seconds))
    return {name: summary(results) for name, results in runs.items()}


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    failed = [
        r["connect_errors"]
        + r["read_errors"]
        + r["write_errors"]
        + r["status_errors"]
        + r["timeouts"]
        for r in runs
    ]
    return {
        "requests_per_second": summarize([r["requests"] / r["duration_us"] * 1e6 for r in runs]),
        "p50_ms": summarize([r["p50_us"] / 1000 for r in runs]),
        "p99_ms": summarize([r["p99_us"] / 1000 for r in runs]),
        "failed_requests": sum(failed),
    }


def stop_under_load(image: str, run_args: list[str], name: str) -> dict[str, Any]:
    """`docker stop` while clients in another process keep the server busy."""
    with Container(image, "--name", name, *run_args) as container:
        url = f"http://{container.ip}:8000/healthz"
        wait_for_http(url, timeout=60)
        time.sleep(2)  # every worker up
        command = [sys.executable, "-m", "bench.stop_probe", url]
        with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as clients:
            assert clients.stdout is not None
            clients.stdout.readline()  # "started"
            time.sleep(3)
            start = time.monotonic()
            run(["docker", "stop", container.id])
            stop_seconds = time.monotonic() - start
            clients.send_signal(signal.SIGINT)
            output, _ = clients.communicate(timeout=30)
        exit_code = run(
            ["docker", "inspect", "--format", "{{.State.ExitCode}}", container.id]
        ).stdout.strip()
    outcomes = json.loads(output.strip().splitlines()[-1])
    return {
        **outcomes,
        # A request the server accepted and did not answer, or answered with an error.
        "failed_requests": outcomes["dropped"] + outcomes["http_error"],
        "stop_seconds": stop_seconds,
        "exit_code": int(exit_code),
    }
