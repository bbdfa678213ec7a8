"""What observability costs (issue #15): the generated app's access log and Prometheus
metrics on `/healthz` and on an item read, and OpenTelemetry installed with tracing off (no
OTEL_EXPORTER_OTLP_ENDPOINT), each against the same app without it.

For each process model, four servers run side by side on one SQLite database, each with
the same CPU limit, and are loaded in turns (bench/load.py's throughput), so that other
load on the machine weighs on all of them alike:
- `bare`: `metrics: no`, `tracing: no`, LOG_LEVEL=WARNING, so no access line is written;
- `logs`: the same image at the image's LOG_LEVEL (INFO): one JSON access line a request;
- `logs+metrics`: `metrics: yes` (`tracing: no`): the access line and the metrics;
- `all, tracing off`: `metrics: yes`, `tracing: yes` (the defaults), no OTLP endpoint.
With the uvicorn model, two more servers in the same turns say what any access log costs,
not only ours: the bare FastAPI app of bench/baseline/ (raw.py: /healthz and the item read on
the same database) with Uvicorn's own access log (plain text, one line a request to stdout,
what every other template gets) and without it (`--no-access-log`).
Ratios pair each run with the run of the other server next to it; each server is checked
to do what its name says (lines logged, requests counted) before its numbers count.
"""

import re
import urllib.request
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench import measure
from bench.load import LoadSettings, Request, ratio, summary, wrk
from bench.log import log
from bench.run import Run
from bench.stats import Summary, summarize
from template import HARDENED_RUN_ARGS, LOCAL_HOST, Container, base_image, build

# Issue #15: logs and metrics cost at most 10% of throughput; tracing installed but off
# costs nothing measurable, which on this noisy machine means within 3%.
LOGS_AND_METRICS_OVER_BARE = 0.90
TRACING_OFF_OVER_WITHOUT = 0.97

# The default single process on 1 CPU (the normal registry), and Gunicorn with 2 workers
# on 2 CPUs (prometheus-client's multiprocess mode: every worker writes its values to files).
MODELS: dict[str, tuple[dict[str, Any], int]] = {
    "uvicorn": ({"process_model": "uvicorn"}, 1),
    "gunicorn, 2 workers": ({"process_model": "gunicorn", "workers": "2"}, 2),
}
# server -> (answers added to the model's, extra run arguments)
SERVERS: dict[str, tuple[dict[str, Any], list[str]]] = {
    "bare": ({"metrics": False, "tracing": False}, ["--env", "LOG_LEVEL=WARNING"]),
    "logs": ({"metrics": False, "tracing": False}, []),
    "logs+metrics": ({"metrics": True, "tracing": False}, []),
    "all, tracing off": ({"metrics": True, "tracing": True}, []),
}
# (label, server, baseline): the ratios reported, the first and last two being targets.
RATIOS = [
    ("logs / bare", "logs", "bare"),
    ("logs+metrics / logs", "logs+metrics", "logs"),
    ("logs+metrics / bare", "logs+metrics", "bare"),
    ("tracing off / without", "all, tracing off", "logs+metrics"),
]
ENDPOINTS = ("/healthz", "/items/{id}")
# The baseline pair (uvicorn model only): server -> extra run arguments. Uvicorn reads its
# options from UVICORN_* variables too: UVICORN_ACCESS_LOG=false is `--no-access-log`
# without replacing the baseline image's command.
ACCESS_LOG_BASELINE: dict[str, list[str]] = {
    "uvicorn access log": [],
    "no access log": ["--env", "UVICORN_ACCESS_LOG=false"],
}
ACCESS_LOG_MODELS = ("uvicorn",)
BASELINE_RATIO = ("Uvicorn's access log / none", "uvicorn access log", "no access log")
# The servers that must write no access line.
SILENT = ("bare", "no access log")
# Uvicorn's access line: `INFO:     172.17.0.2:41234 - "GET /healthz HTTP/1.1" 200 OK`.
UVICORN_ACCESS_LINE = re.compile(r'"[A-Z]+ \S+ HTTP/[\d.]+" \d{3}')


def image(run_: Run, answers: dict[str, Any], tags: dict[str, str]) -> str:
    """The image of an answer set, built once per run. Not Run.image: its labels do not
    tell the metrics and tracing answers apart."""
    key = repr(sorted(answers.items()))
    if key not in tags:
        tag = f"{measure.PREFIX}-observability-{len(tags)}"
        build(run_.project(answers), tag)
        run_.cleanup.image(tag)
        tags[key] = tag
    return tags[key]


def requests_total(exposition: str) -> float:
    """The sum of http_requests_total over its labels, in Prometheus's text format (a route
    label may hold braces: `/items/{item_id}`)."""
    values = re.findall(r"^http_requests_total\{.*\} (\S+)$", exposition, re.M)
    return sum(float(value) for value in values)


def requests_counted(url: str) -> float:
    """What a server's /metrics counted (every worker's, in multiprocess mode)."""
    request = urllib.request.Request(f"{url}/metrics", headers=LOCAL_HOST)
    with urllib.request.urlopen(request, timeout=10) as response:
        return requests_total(response.read().decode())


def is_access_line(line: str) -> bool:
    """The generated app's JSON access line, or Uvicorn's own plain-text one."""
    return '"status"' in line or UVICORN_ACCESS_LINE.search(line) is not None


def access_lines(container: Container) -> int:
    return sum(is_access_line(line) for line in container.logs().splitlines())


def not_as_named(server: str, lines: int, counted: float | None, requests: int) -> str | None:
    """Why a server did not do what its name says during `requests` requests (at least),
    or None: `bare` and `no access log` log no access line, the others one per request, and
    a server with metrics counts as many requests as it logged (Docker's healthcheck probes
    are both)."""
    if server in SILENT:
        return f"{lines} access lines" if lines else None
    if lines < requests:
        return f"{lines} access lines for at least {requests} requests"
    if counted is not None and abs(counted - lines) > max(5, lines / 100):
        return f"/metrics counted {counted:.0f} requests, the log {lines}"
    return None


def check_servers(
    containers: dict[str, Container], urls: dict[str, str], requests: int
) -> dict[str, dict[str, float]]:
    """What each server did during the runs: access lines written, requests its /metrics
    counted. A server that does not do what its name says fails the section."""
    seen: dict[str, dict[str, float]] = {}
    for server, container in containers.items():
        lines = access_lines(container)
        metrics = server in SERVERS and SERVERS[server][0]["metrics"]
        counted = requests_counted(urls[server]) if metrics else None
        seen[server] = {"access_lines": lines, "requests_counted": counted or 0.0}
        reason = not_as_named(server, lines, counted, requests)
        if reason:
            raise AssertionError(f"observability cost: {server}: {reason}")
    return seen


def cpu_usage_file(container: str) -> Path | None:
    """The file holding the CPU time a container's processes used: cgroup v1 (cgroupfs),
    or v2 with the systemd or cgroupfs driver; None when the host shows neither."""
    candidates = [
        Path(f"/sys/fs/cgroup/cpuacct/docker/{container}/cpuacct.usage"),
        Path(f"/sys/fs/cgroup/system.slice/docker-{container}.scope/cpu.stat"),
        Path(f"/sys/fs/cgroup/docker/{container}/cpu.stat"),
    ]
    return next((path for path in candidates if path.exists()), None)


def cpu_seconds(usage: Path) -> float:
    text = usage.read_text()
    if usage.name == "cpuacct.usage":
        return int(text) / 1e9  # nanoseconds
    match = re.search(r"^usage_usec (\d+)$", text, re.M)
    if not match:
        raise ValueError(f"no usage_usec in {usage}")
    return int(match.group(1)) / 1e6


def alternate(
    requests: dict[str, Request], usage: dict[str, Path | None], settings: LoadSettings
) -> dict[str, dict[str, Any]]:
    """bench/load.py's throughput (every server warmed up, then their runs in turns), with
    the CPU time each server's container used per request in each run: what the server
    spends, which the machine's other load changes much less than what it gets done."""
    for request in requests.values():
        wrk(request, settings, settings.warmup_seconds)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in requests}
    cpu_ms: dict[str, list[float]] = {name: [] for name in requests}
    for _ in range(settings.repetitions):
        for name, request in requests.items():
            file = usage[name]
            before = cpu_seconds(file) if file else 0.0
            result = wrk(request, settings, settings.seconds)
            if file and result["requests"]:
                cpu_ms[name].append((cpu_seconds(file) - before) * 1000 / result["requests"])
            runs[name].append(result)
    return {
        name: {
            **summary(results),
            "cpu_ms_per_request": summarize(cpu_ms[name]) if cpu_ms[name] else None,
        }
        for name, results in runs.items()
    }


def cpu_ratio(measured: dict[str, dict[str, Any]], server: str, baseline: str) -> Summary | None:
    """The baseline's CPU time per request over the server's, run by run: the throughput
    ratio the two would have on a CPU of their own (None: no CPU accounting here)."""
    mine, base = measured[server]["cpu_ms_per_request"], measured[baseline]["cpu_ms_per_request"]
    if mine is None or base is None:
        return None
    pairs = [b / m for m, b in zip(mine["values"], base["values"], strict=False) if m > 0]
    return summarize(pairs) if pairs else None


def model_rows(run_: Run, model: str, tags: dict[str, str]) -> list[dict[str, Any]]:
    base, cpus = MODELS[model]
    rows = []
    with ExitStack() as stack:
        images = {
            server: image(run_, {**base, **extra}, tags) for server, (extra, _) in SERVERS.items()
        }
        data = run_.data(
            "sqlite", images["bare"], "app", f"{measure.PREFIX}-observability-{cpus}-data"
        )
        containers, urls, usage = {}, {}, {}
        for index, (server, (extra, args)) in enumerate(SERVERS.items()):
            name = f"{measure.PREFIX}-observability-{cpus}-{index}"
            run_args = [*measure.run_args({**base, **extra}, data.args), *args, "--cpus", str(cpus)]
            # The image's probe starts a Python process every few seconds, which the CPU
            # time per request would count.
            run_args.append("--no-healthcheck")
            container = stack.enter_context(Container(images[server], "--name", name, *run_args))
            urls[server] = f"http://{container.ip}:{measure.PORT}"
            containers[server] = container
            usage[server] = cpu_usage_file(container.id)
        if model in ACCESS_LOG_MODELS:
            baseline = run_.baseline(base_image(run_.project(base)))
            env = ["--env", "APP=raw", "--env", f"DATABASE_URL={data.url}"]
            for index, (server, args) in enumerate(ACCESS_LOG_BASELINE.items()):
                name = f"{measure.PREFIX}-observability-{cpus}-baseline-{index}"
                run_args = [*HARDENED_RUN_ARGS, *data.args, *env, *args, "--cpus", str(cpus)]
                container = stack.enter_context(Container(baseline, "--name", name, *run_args))
                urls[server] = f"http://{container.ip}:{measure.PORT}"
                containers[server] = container
                usage[server] = cpu_usage_file(container.id)
        for url in urls.values():
            measure.wait_until_serving(url)
        item = measure.create_item(urls["bare"])
        paths = {"/healthz": "/healthz", "/items/{id}": f"/items/{item}"}
        for endpoint in ENDPOINTS:
            log(f"observability cost, {model}: wrk on {endpoint}")
            load_average = measure.load_average()[0]
            measured = alternate(
                {server: Request(url + paths[endpoint]) for server, url in urls.items()},
                usage,
                run_.settings.compare,
            )
            labels = RATIOS + ([BASELINE_RATIO] if model in ACCESS_LOG_MODELS else [])
            rows.append(
                {
                    "model": model,
                    "cpus": cpus,
                    "endpoint": endpoint,
                    "servers": measured,
                    "ratios": {
                        label: ratio(measured, server, baseline)
                        for label, server, baseline in labels
                    },
                    "cpu_ratios": {
                        label: cpu_ratio(measured, server, baseline)
                        for label, server, baseline in labels
                    },
                    "load_average_1min": load_average,
                }
            )
        # Every server took at least the requests of its runs (warm-ups aside).
        settings = run_.settings.compare
        fewest = min(
            row["servers"][server]["requests_per_second"]["min"]
            for row in rows
            for server in containers
        )
        seen = check_servers(containers, urls, int(fewest * settings.seconds))
    for row in rows:
        row["checked"] = seen
    return rows


def observability_cost(run_: Run) -> list[dict[str, Any]]:
    tags: dict[str, str] = {}
    rows: list[dict[str, Any]] = []
    for model in MODELS:
        rows += model_rows(run_, model, tags)
    return rows


# The report -------------------------------------------------------------------------------


def judged(row: dict[str, Any], label: str) -> tuple[float, str]:
    """The ratio a target is judged by, and what it is: the CPU time per request where the
    host accounts for it (the machine's other load hardly moves it), else throughput."""
    cpu = row.get("cpu_ratios", {}).get(label)
    if cpu is not None:
        return cpu["median"], "CPU time per request"
    return row["ratios"][label]["median"], "throughput"


def render(rows: list[dict[str, Any]]) -> list[str]:
    from bench.report import spread, table  # bench.report renders this section: import it late

    lines = [
        "## What observability costs",
        "",
        "The generated app without access log, metrics or tracing (`bare`: `metrics: no`, "
        "`tracing: no`, LOG_LEVEL=WARNING), with its JSON access log (`logs`), with the "
        "Prometheus metrics too (`logs+metrics`), and with OpenTelemetry installed but off "
        "(`all, tracing off`: the default answers, no OTEL_EXPORTER_OTLP_ENDPOINT), side by "
        "side on one SQLite database, each with the same CPU limit, loaded in turns. Each "
        "server's CPU time per request is its container's (cgroup) CPU time over a run "
        "divided by the requests of the run; a ratio of CPU times is the throughput ratio "
        "the two servers would have with a CPU each, and the targets are judged by it. "
        "Docker's own handling of the log lines (in dockerd and the container's shim) is "
        "not in the container's CPU time.",
        "",
    ]
    throughput_rows, cpu_rows = [], []
    for row in rows:
        servers = row["servers"]
        where = [row["model"], str(row["cpus"]), f"`{row['endpoint']}`"]
        throughput_rows.append(
            [
                *where,
                *(spread(servers[s]["requests_per_second"], 0) for s in SERVERS),
                *(spread(row["ratios"][label]) for label, _, _ in RATIOS),
                " / ".join(f"{servers[s]['p99_ms']['median']:.0f}" for s in SERVERS),
                " / ".join(str(servers[s]["failed_requests"]) for s in SERVERS),
                f"{row['load_average_1min']:.1f}",
            ]
        )
        cpu = row.get("cpu_ratios") or {}
        if all(servers[s].get("cpu_ms_per_request") for s in SERVERS):
            cpu_rows.append(
                [
                    *where,
                    *(spread(servers[s]["cpu_ms_per_request"], 3) for s in SERVERS),
                    *(spread(cpu[label]) if cpu.get(label) else "-" for label, _, _ in RATIOS),
                ]
            )
    where_head = ["model", "CPUs", "endpoint"]
    ratio_head = [label for label, _, _ in RATIOS]
    lines += ["Throughput:", ""]
    head = [*where_head, *(f"{s} req/s" for s in SERVERS), *ratio_head]
    head += [f"p99 ms ({' / '.join(SERVERS)})", "failed", "load average"]
    lines += table(head, throughput_rows)
    if cpu_rows:
        lines += ["CPU time per request (ms), and its ratios (baseline's over the server's):", ""]
        head = [*where_head, *(f"{s} CPU ms" for s in SERVERS), *ratio_head]
        lines += table(head, cpu_rows)
    return lines + render_access_log_baseline(rows)


def render_access_log_baseline(rows: list[dict[str, Any]]) -> list[str]:
    """Uvicorn's own access log on the bare app, next to ours on the generated app."""
    from bench.report import spread, table

    label, on, off = BASELINE_RATIO
    body = []
    for row in (row for row in rows if label in row["ratios"]):
        servers, cpu = row["servers"], row.get("cpu_ratios") or {}
        cells = [row["model"], str(row["cpus"]), f"`{row['endpoint']}`"]
        cells += [spread(servers[s]["requests_per_second"], 0) for s in (on, off)]
        for ratios in (row["ratios"], cpu):
            cells += [spread(ratios[k]) if ratios.get(k) else "-" for k in (label, "logs / bare")]
        for server in (on, off, "logs", "bare"):
            used = servers[server].get("cpu_ms_per_request")
            cells.append(spread(used, 0, scale=1000) if used else "-")
        cells.append(f"{row['checked'][on]['access_lines']:.0f}" if "checked" in row else "-")
        body.append(cells)
    if not body:
        return []
    lines = [
        "Uvicorn's own access log (plain text, one line a request to stdout, what apps from "
        "other templates get) on the bare FastAPI app (`bench/baseline/raw.py`), on (Uvicorn's "
        "default) and off (`--no-access-log`), in the same turns as the servers above, next "
        "to the generated app's JSON access line (`logs / bare`):",
        "",
    ]
    head = ["model", "CPUs", "endpoint", f"{on} req/s", f"{off} req/s"]
    head += [label, "logs / bare", f"{label} (CPU)", "logs / bare (CPU)"]
    head += [f"{server} CPU µs" for server in (on, off, "logs", "bare")]
    head.append(f"{on}: lines written (the model's whole run)")
    return [*lines, *table(head, body)]


def targets(rows: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Issue #15's targets, in the shape of bench/targets.py's checks."""
    checks = []
    for row in rows or []:
        for label, limit, name in (
            ("logs+metrics / bare", LOGS_AND_METRICS_OVER_BARE, "the access log and metrics"),
            ("tracing off / without", TRACING_OFF_OVER_WITHOUT, "tracing installed and off"),
        ):
            value, basis = judged(row, label)
            subject = f"{row['model']}, `{row['endpoint']}`"
            if label == "logs+metrics / bare" and BASELINE_RATIO[0] in row["ratios"]:
                uvicorn, _ = judged(row, BASELINE_RATIO[0])
                subject += f" (Uvicorn's own access log on a bare app, the same way: {uvicorn:.2f})"
            checks.append(
                {
                    "target": f"{name}: throughput over without ({basis})",
                    "subject": subject,
                    "value": value,
                    "limit": f">= {limit}",
                    "passed": value >= limit,
                }
            )
    return checks
