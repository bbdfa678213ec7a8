"""A benchmark result as Markdown: bench/results/latest.md, and the docs page's copy."""

import re
from pathlib import Path
from typing import Any

from bench import observability_cost, swarm_update
from bench.database_path import SERVERS
from bench.stats import Summary
from bench.targets import SIDE_BY_SIDE_ROWS, side_by_side_values, targets

__all__ = ["render", "targets", "update_docs_page"]


def spread(summary: Summary, digits: int = 2, scale: float = 1.0) -> str:
    """`median (min-max)`, or the value alone when it was measured once."""
    median = summary["median"] * scale
    if summary["n"] == 1:
        return f"{median:.{digits}f}"
    low, high = summary["min"] * scale, summary["max"] * scale
    return f"{median:.{digits}f} ({low:.{digits}f}-{high:.{digits}f})"


def megabytes(value: float) -> str:
    return f"{value / 1e6:.0f}"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


def times(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def number(value: float) -> str:
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def megabytes_list(values: list[float]) -> str:
    """One figure when all workers agree to the megabyte, else each of them."""
    rounded = sorted({f"{value:.0f}" for value in values})
    return " / ".join(rounded) if rounded else "?"


def header(result: dict[str, Any]) -> list[str]:
    machine, settings, load = result["machine"], result["settings"], result["load_average"]

    def wrk(name: str) -> str:
        s = settings[name]
        return (
            f"{s['repetitions']} runs of {s['seconds']} s after a {s['warmup_seconds']} s "
            f"warm-up, {s['connections']} connections, {s['threads']} wrk thread"
        )

    lines = [
        "# Benchmark results",
        "",
        f"Run on {result['date']} by `make bench` ({result['duration_minutes']:.0f} minutes"
        + (", `--quick`" if settings.get("quick") else "")
        + ").",
        "",
        f"- Machine: {machine['cpus']} CPUs ({machine['cpu_model']}), "
        f"{machine['memory_gb']} GB, Linux {machine['kernel']}.",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in result["versions"].items()) + ".",
        f"- Load average (1, 5, 15 min) at the start: {', '.join(map(str, load['start']))}; "
        f"at the end: {', '.join(map(str, load['end']))}.",
        "- Repetitions: "
        + ", ".join(f"{name} {n}" for name, n in settings["repetitions"].items())
        + f". Load per answer set: {wrk('load')}; in the comparisons (database path, side "
        f"by side, Gunicorn workers): {wrk('compare')}.",
        "- Figures are medians, with the spread (minimum-maximum) in brackets. MB is 10⁶ bytes. "
        "A ratio is the median of the ratios of each run to the other server's run next to "
        "it. The load average column is the machine's 1-minute load average when the row's "
        "runs began.",
        "",
    ]
    return lines + [f"- {note}" for note in result["notes"]] + [""]


def render_targets(checks: list[dict[str, Any]]) -> list[str]:
    lines = ["## Targets", ""]
    for check in checks:
        verdict = "PASS" if check["passed"] else "FAIL"
        lines.append(
            f"- **{verdict}** {check['target']}: {check['subject']}: "
            f"{number(check['value'])} (target {check['limit']})"
        )
    return [*lines, ""]


def render_database_path(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "## The database path (1 CPU, one Uvicorn process each)",
        "",
        "The generated app's item routes against the same routes, with the same request and "
        "response models, on the raw driver (aiosqlite, asyncpg) and on a sync SQLAlchemy "
        "session in FastAPI's threadpool (`bench/baseline/`), on one database holding a page "
        "of items (50), loaded in turns.",
        "",
    ]
    body = []
    for row in rows:
        servers = row["servers"]
        body.append(
            [
                row["database"],
                row["endpoint"],
                *(spread(servers[s]["requests_per_second"], 0) for s in SERVERS),
                *(f"{servers[s]['p99_ms']['median']:.0f}" for s in SERVERS),
                spread(row["over_raw"]),
                spread(row["over_sync"]),
                " / ".join(str(servers[s]["failed_requests"]) for s in SERVERS),
                f"{row['load_average_1min']:.1f}",
            ]
        )
    head = ["database", "endpoint", "generated req/s", "raw req/s", "sync req/s"]
    head += ["p99 ms generated", "p99 ms raw", "p99 ms sync"]
    head += ["generated / raw", "generated / sync", "failed (g / r / s)", "load average"]
    return lines + table(head, body)


def render_side_by_side(entry: dict[str, Any]) -> list[str]:
    names = list(entry["images"])
    values = side_by_side_values(entry)
    lines = [
        "## Side by side: what users would write instead",
        "",
        "The same app (a generated project's code) in the template's default image and in "
        "the images of the FastAPI documentation and of the seeds' multi-stage Poetry "
        "Dockerfile (`bench/seeds/`), on the same base image, each limited to 1 CPU under "
        "load. Bold: the best of the row.",
        "",
    ]
    rows = []
    for row, better in SIDE_BY_SIDE_ROWS:
        by_name = values[row]
        best = (min if better == "lower" else max)(by_name.values())
        rows.append(
            [row]
            + [
                f"**{by_name[name]:.1f}**" if by_name[name] == best else f"{by_name[name]:.1f}"
                for name in names
            ]
        )
    lines += table(["", *names], rows)
    lines += [
        "Throughput ratios (the template's image over each alternative) and `docker stop`:",
        "",
    ]
    ratios = []
    for endpoint, measured in entry["throughput"].items():
        ratios.append(
            [f"`{endpoint}`", *(spread(measured["ours_over"][name]) for name in names[1:])]
        )
    lines += table(["endpoint", *(f"x {name}" for name in names[1:])], ratios)
    stops = [[name, *stop_columns(entry["images"][name]["shutdown"])] for name in names]
    return lines + table(["image", *STOP_HEADER], stops)


def render_gunicorn_worker(entry: dict[str, Any]) -> list[str]:
    lines = [
        "## Gunicorn's ASGI worker against uvicorn-worker (`gunicorn` model)",
        "",
        "The same image and gunicorn.conf.py; `GUNICORN_CMD_ARGS=--worker-class asgi` "
        "changes the worker class only (uvicorn-worker: "
        f"`{entry.get('worker_classes', {}).get('uvicorn-worker', 'uvicorn_worker')}`). "
        "One worker per CPU, loaded in turns.",
        "",
    ]
    rows = []
    for row in entry["rows"]:
        workers = row["workers"]
        rows.append(
            [
                str(row["cpus"]),
                f"`{row['endpoint']}`",
                spread(workers["uvicorn-worker"]["requests_per_second"], 0),
                spread(workers["asgi"]["requests_per_second"], 0),
                f"{workers['uvicorn-worker']['p99_ms']['median']:.1f}",
                f"{workers['asgi']['p99_ms']['median']:.1f}",
                spread(row["asgi_over_uvicorn_worker"]),
                f"{workers['uvicorn-worker']['failed_requests']} / {workers['asgi']['failed_requests']}",
            ]
        )
    head = ["CPUs", "endpoint", "uvicorn-worker req/s", "asgi req/s"]
    head += ["p99 ms uvicorn-worker", "p99 ms asgi", "asgi / uvicorn-worker", "failed (u / a)"]
    lines += table(head, rows)
    memory = [
        [
            str(m["cpus"]),
            m["worker"],
            megabytes_list(m["idle"]["worker_rss_mb"]),
            megabytes_list(m["under_load"]["worker_rss_mb"]),
            megabytes_list(m["under_load"]["worker_pss_mb"]),
            f"{m['idle']['total_pss_mb']:.0f} / {m['under_load']['total_pss_mb']:.0f}",
        ]
        for m in entry["memory"]
    ]
    head = ["CPUs", "worker", "worker RSS idle", "worker RSS under load", "worker PSS under load"]
    return lines + table([*head, "container PSS idle / under load"], memory)


def render_answer_sets(result: dict[str, Any]) -> list[str]:
    ran = [c for c in result["combinations"] if not c.get("skipped")]
    lines: list[str] = []
    if "copier_copy" in result:
        lines += ["## copier copy", ""]
        rows = [
            [name, spread(entry["seconds"]), str(entry["files"]), f"{entry['bytes'] / 1e3:.0f}"]
            for name, entry in result["copier_copy"].items()
        ]
        lines += table(["answers", "seconds", "files", "kB"], rows)
    if not ran:
        return lines

    lines += ["## Image size", ""]
    rows = [
        [
            c["label"],
            f"`{c['image']['base_image']}`",
            megabytes(c["image"]["base_bytes"]),
            megabytes(c["image"]["runtime_bytes"]),
            megabytes(c["image"]["overhead_bytes"]),
            megabytes(c["image"]["venv_bytes"]),
            times(c["image"]["overhead_over_venv"]),
        ]
        for c in ran
    ]
    head = ["answers", "base image", "base MB", "image MB", "overhead MB", "/opt/venv MB"]
    lines += table([*head, "overhead / venv"], rows)

    lines += ["## Build time (seconds)", ""]
    rows = [
        [
            c["label"],
            spread(c["build"]["cold_seconds"], 1),
            spread(c["build"]["warm_seconds"], 1) if c["build"]["warm_seconds"] else "-",
            spread(c["build"]["code_change_seconds"], 1),
            f"{c['build']['code_change_over_cold']:.0%}",
            f"{c['build']['dependency_steps_reused']}/{c['build']['dependency_steps']}",
        ]
        for c in ran
    ]
    head = ["answers", "cold", "warm", "code change", "change / cold", "dependency steps reused"]
    lines += table(head, rows)

    lines += ["## Start", ""]
    rows = [
        [
            c["label"],
            spread(c["start"]["first_200_seconds"]),
            "not healthy"
            if c["start"]["healthy_seconds"] is None
            else f"{c['start']['healthy_seconds']:.1f}",
        ]
        for c in ran
    ]
    lines += table(["answers", "docker run to first 200 (s)", "to Docker's healthy (s)"], rows)

    loaded = [c for c in ran if c["load"]]
    lines += ["## Throughput and latency per answer set", ""]
    rows = []
    for c in loaded:
        workers = {m["cpus"]: m["idle"]["workers"] for m in c["memory"]}
        bare = {b["cpus"]: b for b in c["baselines"]}
        for row in c["load"]:
            rows.append(
                [
                    c["label"],
                    str(row["cpus"]),
                    str(workers[row["cpus"]]),
                    f"`{row['endpoint']}`",
                    spread(row["requests_per_second"], 0),
                    spread(row["p50_ms"], 1),
                    spread(row["p99_ms"], 1),
                    spread(row["over_baseline_same_model"]),
                    spread(bare[row["cpus"]]["requests_per_second"], 0),
                    str(row["failed_requests"]),
                    f"{row['load_average_1min']:.1f}",
                ]
            )
    head = ["answers", "CPUs", "workers", "endpoint", "requests/s", "p50 ms", "p99 ms"]
    head += ["x bare app, same model", "bare app /healthz req/s", "failed", "load average"]
    lines += table(head, rows)
    for c in ran:
        lines += [f"- `{c['label']}`: {note}" for note in c.get("load_notes", [])]
    lines.append("")

    lines += [
        "## Memory per process model (MB)",
        "",
        "Resident memory (RSS) of each worker, and proportional memory (PSS: shared pages "
        "divided among the processes that share them, so that a container's processes add "
        "up to what it holds), at idle and in the middle of a load run on the item read.",
        "",
    ]
    rows = []
    for c in loaded:
        for m in c["memory"]:
            idle, busy = m["idle"], m["under_load"]
            rows.append(
                [
                    c["label"],
                    str(m["cpus"]),
                    str(idle["workers"]),
                    megabytes_list(idle["worker_rss_mb"]),
                    megabytes_list(busy["worker_rss_mb"]),
                    megabytes_list(busy["worker_pss_mb"]),
                    "-"
                    if busy["supervisor_rss_mb"] is None
                    else f"{busy['supervisor_rss_mb']:.0f}",
                    f"{idle['total_pss_mb']:.0f} / {busy['total_pss_mb']:.0f}",
                    megabytes_list(m["bare_idle"]["worker_rss_mb"]),
                ]
            )
    head = ["answers", "CPUs", "workers", "worker RSS idle", "worker RSS under load"]
    head += ["worker PSS under load", "supervisor RSS", "container PSS idle / under load"]
    lines += table([*head, "bare app worker RSS idle"], rows)

    lines += ["## `docker stop` under load", ""]
    rows = [[c["label"], *stop_columns(c["shutdown"])] for c in loaded if "shutdown" in c]
    return lines + table(["answers", *STOP_HEADER], rows)


STOP_HEADER = [
    "requests answered",
    "accepted, failed",
    "of which never read by the server",
    "of which handled, answer lost",
    "refused after the socket closed",
    "stop took (s)",
    "exit code",
]


def stop_columns(shutdown: dict[str, Any]) -> list[str]:
    reasons = ", ".join(f"{name}: {n}" for name, n in sorted(shutdown["failed_by_error"].items()))
    failed = str(shutdown["failed_requests"])

    def known(key: str) -> str:
        # None: the server writes no access log, so the split cannot be told.
        value = shutdown.get(key)
        return "?" if value is None else str(value)

    return [
        str(shutdown["ok"]),
        f"{failed} ({reasons})" if reasons else failed,
        known("never_read"),
        known("handled_unanswered"),
        str(shutdown["refused"]),
        f"{shutdown['stop_seconds']:.1f}",
        str(shutdown["exit_code"]),
    ]


def render(result: dict[str, Any]) -> str:
    lines = header(result)
    skipped = [c for c in result["combinations"] if c.get("skipped")]
    if skipped:
        lines += ["Not measured:", ""]
        lines += [f"- `{c['label']}`: {c['skipped']}" for c in skipped] + [""]
    labels = {c["label"] for c in skipped}
    failed = {name: error for name, error in result.get("errors", {}).items() if name not in labels}
    if failed:
        lines += ["Failed, so not reported below:", ""]
        lines += [f"- {name}: {error.splitlines()[0]}" for name, error in failed.items()] + [""]
    lines += render_targets(result["targets"])
    if result.get("database_path"):
        lines += render_database_path(result["database_path"])
    if result.get("side_by_side"):
        lines += render_side_by_side(result["side_by_side"])
    if result.get("gunicorn_worker"):
        lines += render_gunicorn_worker(result["gunicorn_worker"])
    if result.get("swarm_update"):
        lines += swarm_update.render(result["swarm_update"])
    if result.get("observability_cost"):
        lines += observability_cost.render(result["observability_cost"])
    lines += render_answer_sets(result)
    return "\n".join(lines).rstrip() + "\n"


# The line in docs/benchmarks.md after which the page shows the latest results.
DOCS_MARKER = "<!-- The section below is bench/results/latest.md from the last full run. -->"


def update_docs_page(page: Path, markdown: str) -> None:
    """Put the results under the marker, one heading level down, without their title."""
    text = page.read_text()
    if DOCS_MARKER not in text:
        raise ValueError(f"{page} has no line {DOCS_MARKER}")
    body = markdown.split("\n", 1)[1].lstrip("\n")  # drop "# Benchmark results"
    body = re.sub(r"^(#+) ", r"#\1 ", body, flags=re.M)
    page.write_text(text.split(DOCS_MARKER)[0] + DOCS_MARKER + "\n\n" + body.rstrip() + "\n")
