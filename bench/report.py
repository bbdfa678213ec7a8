"""The issue's targets, checked against a result, and the result as Markdown."""

import re
from pathlib import Path
from typing import Any

from bench.stats import Summary

# The targets of issue #8: checked and reported, never enforced.
HEALTHZ_OVER_BASELINE = 0.85
TWO_OVER_ONE = 1.6
REBUILD_OVER_COLD = 0.20
COLD_START_SECONDS = 2.0
OVERHEAD_OVER_VENV = 1.1


def target(name: str, subject: str, value: float, limit: str, passed: bool) -> dict[str, Any]:
    return {"target": name, "subject": subject, "value": value, "limit": limit, "passed": passed}


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    checks = []
    for combination in result["combinations"]:
        if combination.get("skipped"):
            continue
        label = combination["label"]
        model = combination["answers"]["process_model"]
        for row in (row for row in combination["load"] if row["endpoint"] == "/healthz"):
            cpus, ratio = row["cpus"], row["over_baseline_same_model"]
            checks.append(
                target(
                    "/healthz throughput over the bare app in the same process model",
                    f"{label}, {cpus} CPU",
                    ratio,
                    f">= {HEALTHZ_OVER_BASELINE}",
                    ratio >= HEALTHZ_OVER_BASELINE,
                )
            )
        workers = {memory["cpus"]: memory["idle"]["workers"] for memory in combination["memory"]}
        if model != "uvicorn" and workers.get(1) == 1 and workers.get(2) == 2:
            checks += scaling(combination)
        build = combination["build"]
        ratio = build["code_change_over_cold"]
        all_reused = build["dependency_steps_reused"] == build["dependency_steps"]
        checks.append(
            target(
                "code-only rebuild: every dependency layer reused, time over the cold build",
                f"{label} ({build['dependency_steps_reused']}/{build['dependency_steps']} reused)",
                ratio,
                f"all reused and < {REBUILD_OVER_COLD}",
                all_reused and ratio < REBUILD_OVER_COLD,
            )
        )
        if model == "uvicorn":
            seconds = combination["start"]["first_200_seconds"]["median"]
            checks.append(
                target(
                    "cold start to the first 200 from /healthz, seconds (single process)",
                    label,
                    seconds,
                    f"< {COLD_START_SECONDS}",
                    seconds < COLD_START_SECONDS,
                )
            )
        failed = combination["shutdown"]["failed_requests"]
        checks.append(
            target(
                "requests failed during `docker stop` under load",
                label,
                failed,
                "0",
                failed == 0,
            )
        )
        ratio = combination["image"]["overhead_over_venv"]
        checks.append(
            target(
                "runtime image overhead over its base / size of /opt/venv",
                label,
                ratio,
                f"<= {OVERHEAD_OVER_VENV}",
                ratio <= OVERHEAD_OVER_VENV,
            )
        )
    return checks


def scaling(combination: dict[str, Any]) -> list[dict[str, Any]]:
    """2 workers on 2 CPUs over 1 worker on 1 CPU, for each endpoint measured."""
    model = combination["answers"]["process_model"]
    rps = {
        (row["endpoint"], row["cpus"]): row["requests_per_second"]["median"]
        for row in combination["load"]
    }
    # The bare app shows how far this machine itself lets two workers scale: wrk and
    # Docker's log handling share its CPUs.
    bare = {
        b["cpus"]: b["requests_per_second"]["median"]
        for b in combination["baselines"]
        if b["model"] == model
    }
    checks = []
    for endpoint in dict.fromkeys(endpoint for endpoint, _ in rps):
        ratio = rps[endpoint, 2] / rps[endpoint, 1]
        subject = combination["label"]
        if endpoint == "/healthz":
            subject += f" (the bare app in the same model: {bare[2] / bare[1]:.2f})"
        checks.append(
            target(
                f"2 workers on 2 CPUs over 1 worker on 1 CPU (`{endpoint}`)",
                subject,
                ratio,
                f">= {TWO_OVER_ONE}",
                ratio >= TWO_OVER_ONE,
            )
        )
    return checks


# Markdown ---------------------------------------------------------------------------------


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


def render(result: dict[str, Any]) -> str:
    ran = [c for c in result["combinations"] if not c.get("skipped")]
    skipped = [c for c in result["combinations"] if c.get("skipped")]
    machine, settings = result["machine"], result["settings"]
    load = result["load_average"]
    lines = [
        "# Benchmark results",
        "",
        f"Run on {result['date']} by `make bench` ({result['duration_minutes']:.0f} minutes).",
        "",
        f"- Machine: {machine['cpus']} CPUs ({machine['cpu_model']}), "
        f"{machine['memory_gb']} GB, Linux {machine['kernel']}.",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in result["versions"].items()) + ".",
        f"- Load average (1, 5, 15 min) at the start: {', '.join(map(str, load['start']))}; "
        f"at the end: {', '.join(map(str, load['end']))}.",
        "- Repetitions: "
        + ", ".join(f"{name} {n}" for name, n in settings["repetitions"].items())
        + f"; load: wrk with {settings['load']['threads']} "
        f"thread and {settings['load']['connections']} connections, "
        f"{settings['load']['repetitions']} runs of {settings['load']['seconds']} s after a "
        f"{settings['load']['warmup_seconds']} s warm-up.",
        "- Figures are medians, with the spread (minimum-maximum) in brackets. MB is 10⁶ bytes. "
        "A ratio to the bare app is the median of the ratios of each run to the bare app's run "
        "next to it. The load average column is the machine's 1-minute load average when the "
        "row's runs began.",
        "",
    ]
    lines += [f"- {note}" for note in result["notes"]] + [""]
    if skipped:
        lines += ["Not measured:", ""]
        lines += [f"- `{c['label']}`: {c['skipped']}" for c in skipped] + [""]

    lines += ["## Targets", ""]
    for check in result["targets"]:
        verdict = "PASS" if check["passed"] else "FAIL"
        lines.append(
            f"- **{verdict}** {check['target']}: {check['subject']}: "
            f"{number(check['value'])} (target {check['limit']})"
        )
    lines.append("")

    lines += ["## copier copy", ""]
    rows = [
        [name, spread(entry["seconds"]), str(entry["files"]), f"{entry['bytes'] / 1e3:.0f}"]
        for name, entry in result["copier_copy"].items()
    ]
    lines += table(["answers", "seconds", "files", "kB"], rows)

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
    header = ["answers", "base image", "base MB", "image MB", "overhead MB", "/opt/venv MB"]
    lines += table([*header, "overhead / venv"], rows)

    lines += ["## Build time (seconds)", ""]
    rows = [
        [
            c["label"],
            spread(c["build"]["cold_seconds"], 1),
            spread(c["build"]["warm_seconds"], 1),
            spread(c["build"]["code_change_seconds"], 1),
            f"{c['build']['code_change_over_cold']:.0%}",
            f"{c['build']['dependency_steps_reused']}/{c['build']['dependency_steps']}",
        ]
        for c in ran
    ]
    header = ["answers", "cold", "warm", "code change", "change / cold", "dependency steps reused"]
    lines += table(header, rows)

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

    lines += ["## Throughput and latency", ""]
    rows = []
    for c in ran:
        workers = {m["cpus"]: m["idle"]["workers"] for m in c["memory"]}
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
                    spread(row["over_baseline_same_model_runs"]),
                    spread(row["over_bare_uvicorn_runs"]),
                    str(row["failed_requests"]),
                    f"{row['load_average_1min']:.1f}",
                ]
            )
    header = ["answers", "CPUs", "workers", "endpoint", "requests/s", "p50 ms", "p99 ms"]
    header += ["x bare, same model", "x bare, one Uvicorn", "failed", "load average"]
    lines += table(header, rows)
    for c in ran:
        lines += [f"- `{c['label']}`, item read: {note}" for note in c.get("load_notes", [])]
    lines += ["", "The bare app (`bench/baseline/`), measured in turns with each answer set:", ""]
    rows = [
        [
            c["label"],
            f"`{c['image']['base_image']}`",
            b["model"],
            str(b["cpus"]),
            spread(b["requests_per_second"], 0),
            spread(b["p50_ms"], 1),
            spread(b["p99_ms"], 1),
        ]
        for c in ran
        for b in c["baselines"]
    ]
    header = ["beside", "base image", "process model", "CPUs", "requests/s", "p50 ms", "p99 ms"]
    lines += table(header, rows)

    lines += ["## Memory (MB per process)", ""]
    rows = []
    for c in ran:
        for m in c["memory"]:
            idle, after = m["idle"], m["after_load"]
            rows.append(
                [
                    c["label"],
                    str(m["cpus"]),
                    str(idle["workers"]),
                    megabytes_list(idle["worker_rss_mb"]),
                    megabytes_list(after["worker_rss_mb"]),
                    megabytes_list(after["worker_pss_mb"]),
                    "-"
                    if after["supervisor_rss_mb"] is None
                    else f"{after['supervisor_rss_mb']:.0f}",
                    f"{idle['total_pss_mb']:.0f} / {after['total_pss_mb']:.0f}",
                    megabytes_list(m["bare_idle"]["uvicorn"]["worker_rss_mb"]),
                ]
            )
    header = ["answers", "CPUs", "workers", "worker RSS idle", "worker RSS after load"]
    header += ["worker PSS after load", "supervisor RSS", "container PSS idle / after"]
    header += ["bare app RSS idle"]
    lines += table(header, rows)

    lines += ["## `docker stop` under load", ""]
    rows = [
        [
            c["label"],
            str(c["shutdown"]["ok"]),
            failures(c["shutdown"]),
            str(c["shutdown"]["refused"]),
            f"{c['shutdown']['stop_seconds']:.1f}",
            str(c["shutdown"]["exit_code"]),
        ]
        for c in ran
    ]
    header = ["answers", "requests answered", "failed", "connections refused after close"]
    lines += table([*header, "stop took (s)", "exit code"], rows)
    return "\n".join(lines)


def megabytes_list(values: list[float]) -> str:
    """One figure when all workers agree to the megabyte, else each of them."""
    rounded = sorted({f"{value:.0f}" for value in values})
    return " / ".join(rounded) if rounded else "?"


def number(value: float) -> str:
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def failures(shutdown: dict[str, Any]) -> str:
    """The count, and how the dropped requests ended (e.g. ConnectionResetError: 3)."""
    reasons = ", ".join(f"{name}: {n}" for name, n in sorted(shutdown["dropped_by_error"].items()))
    return (
        f"{shutdown['failed_requests']} ({reasons})"
        if reasons
        else str(shutdown["failed_requests"])
    )


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
