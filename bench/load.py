"""Load from wrk, a separate process on the host, against a container's address."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.measure import memory
from bench.stats import Summary, summarize
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


@dataclass(frozen=True)
class Request:
    """What wrk sends: a GET of `url`, or with a JSON `body` a POST of it."""

    url: str
    body: str | None = None


def wrk_command(url: str, settings: LoadSettings, seconds: int) -> list[str]:
    return [
        "wrk",
        f"--threads={settings.threads}",
        f"--connections={settings.connections}",
        f"--duration={seconds}s",
        "--timeout=5s",
        # The address is the container's; the app answers to the names in ALLOWED_HOSTS.
        "--header=Host: localhost",
        f"--script={LUA}",
        url,
    ]


def wrk_env(request: Request) -> dict[str, str]:
    # wrk_report.lua makes every request a POST of WRK_BODY when it is set.
    return {"WRK_BODY": request.body} if request.body else {}


def parse(output: str) -> dict[str, Any]:
    """The JSON line that wrk_report.lua prints after wrk's own summary."""
    line = next(line for line in reversed(output.splitlines()) if line.startswith("{"))
    return json.loads(line)


def wrk(request: Request, settings: LoadSettings, seconds: int) -> dict[str, Any]:
    command = wrk_command(request.url, settings, seconds)
    return parse(run(command, env=wrk_env(request), timeout=seconds + 60).stdout)


def throughput(requests: dict[str, Request], settings: LoadSettings) -> dict[str, dict[str, Any]]:
    """Requests per second and latency percentiles of several servers, each warmed up
    first. Their runs alternate, so that whatever else loads the machine meanwhile weighs
    on all of them alike and their ratios stay fair."""
    for request in requests.values():
        wrk(request, settings, settings.warmup_seconds)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in requests}
    for _ in range(settings.repetitions):
        for name, request in requests.items():
            runs[name].append(wrk(request, settings, settings.seconds))
    return {name: summary(results) for name, results in runs.items()}


def ratio(results: dict[str, dict[str, Any]], server: str, baseline: str) -> Summary:
    """The ratio of each of a server's runs to the baseline's run next to it: pairs close
    in time share the machine's other load, so their ratios vary less than the runs."""
    runs = results[server]["requests_per_second"]["values"]
    base = results[baseline]["requests_per_second"]["values"]
    # A baseline run that completed no request at all (a stalled machine) has no ratio.
    pairs = [a / b for a, b in zip(runs, base, strict=True) if b > 0]
    return summarize(pairs or [0.0])


def memory_under_load(container: str, request: Request, settings: LoadSettings) -> dict[str, Any]:
    """The container's memory (see measure.memory) in the middle of a wrk run."""
    seconds = max(settings.seconds, 2)
    command = wrk_command(request.url, settings, seconds)
    env = {**os.environ, **wrk_env(request)}
    with subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL) as client:
        time.sleep(seconds / 2)
        sample = memory(container)
        client.wait(timeout=seconds + 60)
    return sample


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    # wrk counts a response with an error status as a request too, and a socket error
    # against whichever request was under way: both are failures, reported apart.
    socket_errors = [
        r["connect_errors"] + r["read_errors"] + r["write_errors"] + r["timeouts"] for r in runs
    ]
    return {
        "requests_per_second": summarize([r["requests"] / r["duration_us"] * 1e6 for r in runs]),
        "p50_ms": summarize([r["p50_us"] / 1000 for r in runs]),
        "p99_ms": summarize([r["p99_us"] / 1000 for r in runs]),
        "failed_requests": sum(socket_errors) + sum(r["status_errors"] for r in runs),
        "error_statuses": sum(r["status_errors"] for r in runs),
    }


# An access log line of a probe's request: Uvicorn's and Gunicorn's text lines
# (`"GET /healthz HTTP/1.1" 200`) and the template's JSON ones (`"GET /healthz 200"`).
PROBE_ACCESS_LINE = re.compile(r"GET /healthz[ \"]")


def probe_requests_logged(logs: str) -> int:
    """The access log lines of requests to /healthz from outside the container (the
    image's HEALTHCHECK asks from 127.0.0.1)."""
    return sum(
        1
        for line in logs.splitlines()
        if PROBE_ACCESS_LINE.search(line) and "127.0.0.1" not in line
    )


def stop_under_load(image: str, run_args: list[str], name: str) -> dict[str, Any]:
    """`docker stop` while clients in another process keep the server busy (see
    stop_probe.py for how each request can end). The server's access log tells the
    requests that failed apart: handled, and the answer lost (the client cannot know
    whether to retry), or never read by the server (reset in the listening socket's
    queue or unread on a connection it closed: nothing ran, a retry is safe)."""
    with Container(image, "--name", name, *run_args) as container:
        url = f"http://{container.ip}:8000/healthz"
        wait_for_http(url, timeout=60)
        time.sleep(2)  # every worker up
        logged_before = probe_requests_logged(container.logs())
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
        logged = probe_requests_logged(container.logs()) - logged_before
    outcomes = json.loads(output.strip().splitlines()[-1])
    unanswered = outcomes["reset"] + outcomes["dropped"]
    answered = outcomes["ok"] + outcomes["http_error"]
    # Without an access log (the seeds' Gunicorn has none) the split is unknown.
    handled_unanswered = max(logged - answered, 0) if logged else None
    return {
        **outcomes,
        # Accepted (the connection was made, the request sent) and not answered, or
        # answered with an error; refused connections are counted apart.
        "failed_requests": unanswered + outcomes["http_error"],
        "logged_requests": logged if logged else None,
        "handled_unanswered": handled_unanswered,
        "never_read": None if handled_unanswered is None else unanswered - handled_unanswered,
        "stop_seconds": stop_seconds,
        "exit_code": int(exit_code),
    }
