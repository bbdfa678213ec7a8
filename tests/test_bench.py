"""The benchmark's report, from a made-up result: the targets are judged right and the
Markdown has every section. The benchmark itself never runs in the test suite."""

import sys
from typing import Any

from template import ROOT

sys.path.insert(0, str(ROOT))  # `bench` is a package at the repository's root

from bench import report
from bench.answers import label, parse
from bench.stats import summarize


def load_row(cpus: int, endpoint: str, rps: float, over_same: float) -> dict[str, Any]:
    return {
        "cpus": cpus,
        "endpoint": endpoint,
        "requests_per_second": summarize([rps * 0.9, rps, rps * 1.1]),
        "p50_ms": summarize([5.0]),
        "p99_ms": summarize([20.0]),
        "failed_requests": 0,
        "over_baseline_same_model": over_same,
        "over_bare_uvicorn": over_same,
        "over_baseline_same_model_runs": summarize([over_same]),
        "over_bare_uvicorn_runs": summarize([over_same]),
        "load_average_1min": 1.5,
    }


def memory(workers: int) -> dict[str, Any]:
    process = {
        "workers": workers,
        "worker_rss_mb": [70.0] * workers,
        "worker_pss_mb": [60.0] * workers,
        "supervisor_rss_mb": 25.0 if workers > 1 else None,
        "total_pss_mb": 60.0 * workers,
    }
    return {"idle": process, "after_load": process, "bare_idle": {"uvicorn": process}}


def combination() -> dict[str, Any]:
    return {
        "label": "gunicorn-slim-3.13-uv-sqlite",
        "answers": {"process_model": "gunicorn"},
        "image": {
            "base_image": "python:3.13-slim-trixie",
            "base_bytes": 174_000_000,
            "runtime_bytes": 250_000_000,
            "overhead_bytes": 76_000_000,
            "venv_bytes": 75_000_000,
            "overhead_over_venv": 76 / 75,
        },
        "build": {
            "cold_seconds": summarize([10.0, 11.0]),
            "warm_seconds": summarize([0.5]),
            "code_change_seconds": summarize([1.0]),
            "code_change_over_cold": 1.0 / 10.5,
            "dependency_steps": 4,
            "dependency_steps_reused": 4,
        },
        "start": {"first_200_seconds": summarize([2.2, 2.3]), "healthy_seconds": 10.5},
        "load": [
            load_row(1, "/healthz", 2000, 0.9),
            load_row(1, "/items/{id}", 500, 0.25),
            load_row(2, "/healthz", 3000, 0.8),
            load_row(2, "/items/{id}", 900, 0.3),
        ],
        "baselines": [
            {"cpus": cpus, "model": model, **load_row(cpus, "/healthz", rps, 1)}
            for model in ("uvicorn", "gunicorn")
            for cpus, rps in ((1, 2200), (2, 3300))
        ],
        "memory": [{"cpus": 1, **memory(1)}, {"cpus": 2, **memory(2)}],
        "load_notes": [],
        "shutdown": {
            "ok": 3000,
            "failed_requests": 2,
            "refused": 900,
            "dropped_by_error": {"ConnectionResetError": 2},
            "stop_seconds": 1.1,
            "exit_code": 0,
        },
    }


def result() -> dict[str, Any]:
    sample: dict[str, Any] = {
        "date": "2026-01-01 00:00 UTC",
        "duration_minutes": 20.0,
        "machine": {"cpus": 2, "cpu_model": "CPU", "memory_gb": 8, "kernel": "6"},
        "versions": {"docker": "26"},
        "load_average": {"start": [0.1, 0.2, 0.3], "end": [1.0, 1.0, 1.0]},
        "settings": {
            "repetitions": {"cold": 2},
            "load": {"threads": 1, "connections": 32, "repetitions": 5, "seconds": 3},
        },
        "notes": ["a note"],
        "copier_copy": {"defaults": {"seconds": summarize([1.0]), "files": 35, "bytes": 1000}},
        "combinations": [
            combination(),
            {"label": "uvicorn-alpine-3.13-uv-sqlite", "skipped": "no local image"},
        ],
    }
    sample["settings"]["load"]["warmup_seconds"] = 2
    sample["targets"] = report.targets(sample)
    return sample


def test_targets_are_judged_against_the_issue_thresholds() -> None:
    verdicts = {
        (check["target"].split(" ")[0], check["subject"]): check["passed"]
        for check in result()["targets"]
    }
    name = "gunicorn-slim-3.13-uv-sqlite"
    assert verdicts[("/healthz", f"{name}, 1 CPU")] is True  # 0.9 >= 0.85
    assert verdicts[("/healthz", f"{name}, 2 CPU")] is False  # 0.8 < 0.85
    assert verdicts[("2", f"{name} (the bare app in the same model: 1.50)")] is False  # 1.5
    assert verdicts[("2", name)] is True  # /items/{id}: 900 / 500 = 1.8
    assert verdicts[("code-only", f"{name} (4/4 reused)")] is True
    assert verdicts[("requests", name)] is False  # 2 failed
    assert verdicts[("runtime", name)] is True
    # The cold-start target is for the single-process model only.
    assert not any(check["target"].startswith("cold start") for check in result()["targets"])


def test_markdown_has_every_section_and_the_skipped_reason() -> None:
    markdown = report.render(result())
    for heading in (
        "## Targets",
        "## copier copy",
        "## Image size",
        "## Build time (seconds)",
        "## Start",
        "## Throughput and latency",
        "## Memory (MB per process)",
        "## `docker stop` under load",
    ):
        assert f"\n{heading}\n" in markdown
    assert "**FAIL** 2 workers on 2 CPUs" in markdown
    assert "`uvicorn-alpine-3.13-uv-sqlite`: no local image" in markdown
    assert "| 2000 (1800-2200) |" in markdown
    assert "2 (ConnectionResetError: 2)" in markdown


def test_answers_on_the_command_line_are_typed_like_copier_yml() -> None:
    answers = parse("process_model=gunicorn,proxy_headers=false,port=8080")
    assert answers == {"process_model": "gunicorn", "proxy_headers": False, "port": 8080}
    assert label(answers) == "gunicorn-slim-3.13-uv-sqlite"


def test_the_benchmarks_page_shows_the_committed_results() -> None:
    """A full `make bench` writes its results into docs/benchmarks.md too."""
    latest = (ROOT / "bench" / "results" / "latest.md").read_text()
    page = (ROOT / "docs" / "benchmarks.md").read_text()
    run_line = next(line for line in latest.splitlines() if line.startswith("Run on "))
    assert run_line in page, "docs/benchmarks.md does not show bench/results/latest.md"
