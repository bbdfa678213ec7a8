"""`make bench`: measure answer sets side by side and write bench/results/latest.{md,json}.

make bench                                   # the default sections (about 20 minutes)
make bench BENCH_ARGS="--quick"              # one quick pass, to try changes
make bench BENCH_ARGS="--answers process_model=gunicorn,base_variant=full"
"""

import argparse
import datetime
import json
import shutil
import signal
import sys
import tempfile
import traceback
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from bench import answers as answer_sets
from bench import measure, report
from bench.combination import bench_answer_set
from bench.database_path import database_path
from bench.gunicorn_worker import compare_workers
from bench.load import LoadSettings, require_wrk
from bench.log import log, minutes
from bench.observability_cost import observability_cost
from bench.run import Run, Settings
from bench.side_by_side import side_by_side
from bench.swarm_update import swarm_update
from template import docker_available

RESULTS = Path(__file__).resolve().parent / "results"
DOCS_PAGE = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
SECTIONS = (
    "answers",
    "database",
    "side-by-side",
    "gunicorn-worker",
    "swarm-update",
    "observability",
)
# What a run without --sections measures: about 20 minutes. The others take minutes each
# and are run by name (their results and docs say when they were measured).
DEFAULT_SECTIONS = ("answers", "database", "side-by-side", "gunicorn-worker")

FULL = Settings(
    repetitions={
        "copier": 3,
        # Builds and starts vary little between runs; the load runs are where time goes.
        "cold": 1,
        "warm": 1,
        "change": 2,
        "start": 3,
        # The alternatives' builds download their packages: slow, and once is enough.
        "seed_cold": 1,
        "seed_change": 2,
    },
    load=LoadSettings(seconds=2, repetitions=3, warmup_seconds=1, connections=32, threads=1),
    compare=LoadSettings(seconds=2, repetitions=5, warmup_seconds=1, connections=32, threads=1),
)
QUICK = Settings(
    repetitions={
        "copier": 1,
        "cold": 1,
        "warm": 1,
        "change": 1,
        "start": 1,
        "seed_cold": 1,
        "seed_change": 1,
    },
    load=LoadSettings(seconds=1, repetitions=1, warmup_seconds=1, connections=32, threads=1),
    compare=LoadSettings(seconds=1, repetitions=1, warmup_seconds=1, connections=32, threads=1),
)

NOTES = [
    "The machine is shared and noisy: absolute requests per second move from run to run "
    "with the other work on it (see the load averages). Ratios are the median of the "
    "ratios of runs made in turns, next to each other, so that the same load weighs on "
    "both sides; they are what carries over, not the absolute numbers.",
    "Cold builds run with `--no-cache`, so no layer is reused, but they are not a first "
    "build on a new machine: the base images are already local (no registry is reachable "
    "here), and the template's dependency tool still finds the wheels in the BuildKit cache "
    "mount. The alternatives' Dockerfiles have no cache mount, so they download their "
    "packages from the package index in every cold build, as they would for their users.",
    "The base images are this machine's stand-ins for the public ones (built from Debian "
    "packages): their sizes differ from the public images, so compare the overhead over the "
    "base, not absolute sizes.",
    "wrk runs on the same machine as the containers and competes with them for the CPUs: "
    "at 2 CPUs the server cannot have both cores to itself.",
    "Every server logs each request, as the template's servers do (the bare apps with "
    "Gunicorn get `--access-logfile -` to match), so the ratios to the bare apps measure "
    "the application code, not logging. The seeds' Poetry image runs Gunicorn as its page "
    "says, without an access log.",
    "The template's containers run as the compose file runs them (read-only, no "
    "capabilities), with `ALLOWED_HOSTS=*` so that clients can use the container's "
    "address; the alternatives run as their pages run them (`docker run`, as root), with "
    "the same `ALLOWED_HOSTS`.",
    "`docker stop` is measured with 16 clients in a separate process, each request on a new "
    "connection (`bench/stop_probe.py`). A connection refused after the server closed its "
    "socket is expected (nothing listens any more; a client retries it safely). A request "
    "whose connection was accepted and that got no answer (reset or closed) or an error "
    "status is a failure. The server's access log splits those: requests it never read "
    "(reset in the listening socket's queue, or unread on a connection it closed as it "
    "stopped: nothing ran, but the client cannot tell) and requests it handled whose "
    "answer was lost.",
    "Cold start is timed from before `docker run` to the first 200, polling every 0.1 s; "
    "`healthy` once, where the image has a HEALTHCHECK (it probes every second while the "
    "container starts).",
]


def attempt(errors: dict[str, str], name: str, measurement: Callable[[], Any]) -> Any:
    """Run one measurement; when it fails, record why and go on with the others, so that a
    long run still reports what it measured."""
    try:
        return measurement()
    except Exception as error:
        log(f"{name} failed:\n{traceback.format_exc()}")
        errors[name] = f"{type(error).__name__}: {str(error)[:1500]}"
        return None


def measure_answer_sets(
    run: Run,
    sets: list[dict[str, Any]],
    image_only: list[dict[str, Any]],
    result: dict[str, Any],
) -> None:
    """Each answer set into result["combinations"] as soon as it is measured (an answer
    set measured earlier in the run, for the side by side, is not measured again)."""
    done = {entry["label"] for entry in result["combinations"]}
    for answers, with_load in [(a, True) for a in sets] + [(a, False) for a in image_only]:
        label = answer_sets.label(answers)
        if label in done:
            continue
        errors = result["errors"]
        entry = attempt(errors, label, partial(bench_answer_set, answers, run, with_load))
        result["combinations"].append(
            entry or {"label": label, "skipped": f"failed: {errors[label]}"}
        )


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--answers",
        action="append",
        metavar="Q=V,Q=V",
        help="an answer set to measure (repeatable); unanswered questions take their "
        "defaults; without it, the default set",
    )
    parser.add_argument(
        "--quick", action="store_true", help="one repetition and short load runs, to try things"
    )
    parser.add_argument(
        "--sections",
        default=None,
        metavar="S,S",
        help=f"what to measure, of {', '.join(SECTIONS)} (default: "
        f"{', '.join(DEFAULT_SECTIONS)}; with --answers, only the answer sets)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        help="where to write PATH.json and PATH.md (default: bench/results/latest, or "
        "for --quick a temporary directory, so that a trial never replaces the committed "
        "results)",
    )
    parser.add_argument(
        "--report",
        type=Path,
        metavar="JSON",
        help="measure nothing: render the Markdown again from a results file (after a "
        "change to the report's layout)",
    )
    arguments = parser.parse_args(argv)
    default = "answers" if arguments.answers else ",".join(DEFAULT_SECTIONS)
    arguments.sections = [name.strip() for name in (arguments.sections or default).split(",")]
    unknown = set(arguments.sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {', '.join(sorted(unknown))}; known: {', '.join(SECTIONS)}")
    if arguments.output is None:
        quick = Path(tempfile.gettempdir()) / "bench-quick" / "latest"
        arguments.output = quick if arguments.quick else RESULTS / "latest"
    return arguments


def write(result: dict[str, Any], output: Path) -> None:
    """The measurements first, so that they survive a failure of the report (which
    `--report` then renders again), then the targets they meet and the Markdown."""
    output.parent.mkdir(parents=True, exist_ok=True)
    output.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    result["targets"] = report.targets(result)
    output.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    markdown = report.render(result)
    output.with_suffix(".md").write_text(markdown)
    print(markdown)
    if output == RESULTS / "latest":
        report.update_docs_page(DOCS_PAGE, markdown)
        log(f"updated {DOCS_PAGE}")
    log(f"wrote {output}.md and .json")


def main(argv: list[str] | None = None) -> None:
    arguments = parse_arguments(argv)
    if arguments.report:
        write(json.loads(arguments.report.read_text()), arguments.output)
        return
    require_wrk()
    if not docker_available():
        raise SystemExit("no Docker engine answers: the benchmark builds and runs images")
    sets = [answer_sets.parse(text) for text in arguments.answers or []]
    image_only = [] if sets else answer_sets.IMAGE_ONLY
    sets = sets or answer_sets.DEFAULT_SET
    for answers in sets:
        answer_sets.check_choices(answers)
    settings = QUICK if arguments.quick else FULL
    sections = arguments.sections

    result: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": measure.machine(),
        "versions": measure.versions(),
        "load_average": {"start": measure.load_average()},
        "settings": settings.as_json(arguments.quick),
        "sections": sections,
        "notes": NOTES,
        "combinations": [],
    }
    run = Run(settings, Path(tempfile.mkdtemp(prefix="bench-")))
    # `kill` (SIGTERM) ends the run through the `finally` below, which removes what it made
    # and reports what was measured until then.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    errors: dict[str, str] = result.setdefault("errors", {})
    try:
        # The comparisons first: they are what the answer sets are judged by.
        if "database" in sections:
            result["database_path"] = attempt(errors, "database path", lambda: database_path(run))
        if "side-by-side" in sections:
            ours = attempt(errors, answer_sets.label({}), lambda: bench_answer_set({}, run))
            if ours:
                result["combinations"].append(ours)
                result["side_by_side"] = attempt(
                    errors, "side by side", lambda: side_by_side(run, ours)
                )
        if "gunicorn-worker" in sections:
            result["gunicorn_worker"] = attempt(
                errors, "gunicorn worker", lambda: compare_workers(run)
            )
        if "swarm-update" in sections:
            result["swarm_update"] = attempt(errors, "swarm update", lambda: swarm_update(run))
        if "observability" in sections:
            result["observability_cost"] = attempt(
                errors, "observability cost", lambda: observability_cost(run)
            )
        if "answers" in sections:
            log("copier copy")
            copies = settings.repetitions["copier"]
            result["copier_copy"] = {
                "defaults": measure.copier_copy({}, copies, run.work),
                "largest answer set": measure.copier_copy(answer_sets.LARGEST, copies, run.work),
            }
            measure_answer_sets(run, sets, image_only, result)
    except SystemExit:
        errors["run"] = "stopped (SIGTERM) before every section was measured"
        raise
    finally:
        log("cleaning up")
        run.close()
        shutil.rmtree(run.work, ignore_errors=True)
        result["load_average"]["end"] = measure.load_average()
        result["duration_minutes"] = minutes()
        write(result, arguments.output)


if __name__ == "__main__":
    main()
