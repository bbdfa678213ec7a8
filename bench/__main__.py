"""`make bench`: measure answer sets side by side and write bench/results/latest.{md,json}.

make bench                                   # the default set (about 20 minutes)
make bench BENCH_ARGS="--quick"              # one quick pass, to try changes
make bench BENCH_ARGS="--answers process_model=gunicorn,base_variant=full"
"""

import argparse
import dataclasses
import datetime
import json
import shutil
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench import answers as answer_sets
from bench import measure, report
from bench.load import LoadSettings, require_wrk, stop_under_load, throughput
from bench.stats import Summary, summarize
from template import Container, base_image, docker_available, image_exists, render, run

RESULTS = Path(__file__).resolve().parent / "results"
DOCS_PAGE = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
STARTED = time.monotonic()

FULL = {
    "repetitions": {"copier": 5, "cold": 3, "warm": 5, "change": 5, "start": 5},
    "load": LoadSettings(seconds=3, repetitions=5, warmup_seconds=2, connections=32, threads=1),
}
QUICK = {
    "repetitions": {"copier": 2, "cold": 1, "warm": 1, "change": 1, "start": 2},
    "load": LoadSettings(seconds=2, repetitions=1, warmup_seconds=1, connections=32, threads=1),
}

NOTES = [
    "Cold builds run with `--no-cache`, so no layer is reused, but they are not a first "
    "build on a new machine: the base images are already local (no registry is reachable "
    "here), and the dependency tool's download cache in the BuildKit cache mount still "
    "holds the wheels, so nothing is downloaded.",
    "The base images are this machine's stand-ins for the public ones (built from Debian "
    "packages): their sizes differ from the public images, so compare the overhead over the "
    "base, not absolute sizes.",
    "wrk runs on the same machine as the container and competes with it for the CPUs: at "
    "2 CPUs the server cannot have both cores to itself. Other work on the machine adds "
    "noise too (see the load averages).",
    "Every server logs each request, as the template's servers do (the bare app with "
    "Gunicorn gets `--access-logfile -` to match), so the ratios to the bare app measure "
    "the application code, not logging.",
    "`docker stop` is measured with 16 clients in a separate process, each request on a new "
    "connection (`bench/stop_probe.py`). A connection refused after the server closed its "
    "socket is expected (nothing listens any more); a request whose connection was accepted "
    "and that got no answer, or an error status, is a failure.",
    "Cold start is timed from before `docker run` to the first 200, polling every 0.1 s. "
    "Docker's `healthy` is not timed: its HEALTHCHECK probes every second while the "
    "container starts (`--start-interval=1s`).",
]


def log(message: str) -> None:
    print(f"[{(time.monotonic() - STARTED) / 60:5.1f} min] {message}", file=sys.stderr, flush=True)


def baseline_image(base: str, images: dict[str, str], cleanup: measure.Cleanup) -> str:
    """The bare app on `base`, built once per run."""
    if base not in images:
        tag = f"{measure.PREFIX}-baseline-{len(images)}"
        command = ["docker", "build", "--quiet", "--tag", tag, "--build-arg"]
        command += [f"BASE_IMAGE={base}", "--build-context", f"locks={measure.PIP_LOCKS}"]
        run([*command, str(measure.BASELINE_DIR)])
        cleanup.image(tag)
        images[base] = tag
    return images[base]


def load_phase(
    tag: str,
    bare_image: str,
    answers: dict[str, Any],
    volume: str | None,
    cpus: int,
    load: LoadSettings,
) -> dict[str, Any]:
    """The app and the bare app side by side, with the same CPU limit, loaded in turns."""
    model = answers["process_model"]
    limit = ["--cpus", str(cpus)]
    with ExitStack() as stack:
        app = stack.enter_context(
            Container(tag, "--name", f"{tag}-load", *limit, *measure.run_args(answers, volume))
        )
        app_url = f"http://{app.ip}:{measure.PORT}"
        measure.wait_until_serving(app_url)
        idle = measure.memory(app.id)
        urls = {"/healthz": f"{app_url}/healthz"}
        note = ""
        if answers["migrations"] and answers["database"] != "sqlite":
            note = "not measured: it needs a PostgreSQL server, which the benchmark does not start"
        elif not answers["migrations"] and model != "uvicorn":
            note = "not measured: without a database each worker keeps its own items in memory"
        else:
            urls["/items/{id}"] = f"{app_url}/items/{measure.create_item(app_url)}"
        bare_memory = {}
        # The bare app as one Uvicorn process, and in the app's own process model.
        for bare_model in dict.fromkeys(["uvicorn", model]):
            workers = 1 if bare_model == "uvicorn" else idle["workers"]
            env = ["--env", f"MODEL={bare_model}", "--env", f"WORKERS={workers}"]
            name = f"{tag}-bare-{bare_model}"
            bare = stack.enter_context(Container(bare_image, "--name", name, *limit, *env))
            bare_url = f"http://{bare.ip}:{measure.PORT}"
            measure.wait_until_serving(bare_url)
            bare_memory[bare_model] = measure.memory(bare.id)
            urls[f"bare {bare_model}"] = f"{bare_url}/healthz"
        log(f"{answers['process_model']}: wrk on {', '.join(urls)}")
        load_average = measure.load_average()[0]
        results = throughput(urls, load)
        after = measure.memory(app.id)

    def paired(endpoint: str, bare: str) -> Summary:
        """The ratio of each run to the bare app's run right after it: pairs close in
        time share the machine's other load, so their ratios vary less than the runs."""
        app_runs = results[endpoint]["requests_per_second"]["values"]
        bare_runs = results[bare]["requests_per_second"]["values"]
        return summarize([a / b for a, b in zip(app_runs, bare_runs, strict=True)])

    rows = []
    for endpoint in (name for name in urls if name.startswith("/")):
        same, one = paired(endpoint, f"bare {model}"), paired(endpoint, "bare uvicorn")
        rows.append(
            {
                "cpus": cpus,
                "endpoint": endpoint,
                **results[endpoint],
                "over_baseline_same_model": same["median"],
                "over_bare_uvicorn": one["median"],
                "over_baseline_same_model_runs": same,
                "over_bare_uvicorn_runs": one,
                "load_average_1min": load_average,
            }
        )
    baselines = [
        {"cpus": cpus, "model": name.removeprefix("bare "), **results[name]}
        for name in urls
        if name.startswith("bare ")
    ]
    return {
        "rows": rows,
        "baselines": baselines,
        "memory": {"cpus": cpus, "idle": idle, "after_load": after, "bare_idle": bare_memory},
        "note": note,
    }


def bench_combination(
    answers: dict[str, Any],
    settings: dict[str, Any],
    work: Path,
    baseline_images: dict[str, str],
    cleanup: measure.Cleanup,
) -> dict[str, Any]:
    label = answer_sets.label(answers)
    full = answer_sets.with_defaults(answers)
    entry: dict[str, Any] = {"label": label, "answers": full}
    project = render(answers, work)
    base = base_image(project)
    if not image_exists(base):
        entry["skipped"] = (
            f"no local image `{base}`: this machine's stand-ins have no Python 3.12 and no "
            "Alpine images, and no registry is reachable to pull them"
        )
        log(f"{label}: skipped ({entry['skipped']})")
        return entry
    repetitions, load = settings["repetitions"], settings["load"]
    package = full.get("package_name", "app")
    sqlite = full["migrations"] and full["database"] == "sqlite"
    tag = f"{measure.PREFIX}-{label}"

    log(f"{label}: builds")
    entry["build"] = measure.builds(project, tag, package, repetitions, cleanup)
    entry["image"] = measure.image_sizes(tag, base)
    log(f"{label}: cold starts")
    entry["start"] = measure.cold_starts(tag, full, repetitions["start"], f"{tag}-start")

    volume = measure.migrated_volume(tag, package, f"{tag}-data", cleanup) if sqlite else None
    bare_image = baseline_image(base, baseline_images, cleanup)
    entry["load"], entry["baselines"], entry["memory"], entry["load_notes"] = [], [], [], []
    for cpus in (1, 2):
        log(f"{label}: load with {cpus} CPU")
        phase = load_phase(tag, bare_image, full, volume, cpus, load)
        entry["load"] += phase["rows"]
        entry["baselines"] += phase["baselines"]
        entry["memory"].append(phase["memory"])
        if phase["note"] and phase["note"] not in entry["load_notes"]:
            entry["load_notes"].append(phase["note"])

    log(f"{label}: docker stop under load")
    entry["shutdown"] = stop_under_load(tag, measure.run_args(full, None), f"{tag}-stop")
    return entry


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
    if arguments.output is None:
        quick = Path(tempfile.gettempdir()) / "bench-quick" / "latest"
        arguments.output = quick if arguments.quick else RESULTS / "latest"
    return arguments


def write(result: dict[str, Any], output: Path) -> None:
    markdown = report.render(result)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    output.with_suffix(".md").write_text(markdown + "\n")
    print(markdown)
    if output == RESULTS / "latest":
        report.update_docs_page(DOCS_PAGE, markdown)
        log(f"updated {DOCS_PAGE}")
    log(f"wrote {output}.md and .json")


def main(argv: list[str] | None = None) -> None:
    arguments = parse_arguments(argv)
    if arguments.report:
        result = json.loads(arguments.report.read_text())
        result["targets"] = report.targets(result)  # derived from the measurements
        write(result, arguments.output)
        return
    require_wrk()
    if not docker_available():
        raise SystemExit("no Docker engine answers: the benchmark builds and runs images")
    sets = [answer_sets.parse(text) for text in arguments.answers or []]
    sets = sets or answer_sets.DEFAULT_SET
    for answers in sets:
        answer_sets.check_choices(answers)
    settings = QUICK if arguments.quick else FULL

    result: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": measure.machine(),
        "versions": measure.versions(),
        "load_average": {"start": measure.load_average()},
        "settings": {
            "repetitions": settings["repetitions"],
            "load": dataclasses.asdict(settings["load"]),
            "quick": arguments.quick,
        },
        "notes": NOTES,
        "combinations": [],
    }
    work = Path(tempfile.mkdtemp(prefix="bench-"))
    cleanup = measure.Cleanup()
    baseline_images: dict[str, str] = {}
    try:
        log("copier copy")
        copies = settings["repetitions"]["copier"]
        result["copier_copy"] = {
            "defaults": measure.copier_copy({}, copies, work),
            "largest answer set": measure.copier_copy(answer_sets.LARGEST, copies, work),
        }
        for answers in sets:
            result["combinations"].append(
                bench_combination(answers, settings, work, baseline_images, cleanup)
            )
    finally:
        log("cleaning up")
        cleanup.close()
        shutil.rmtree(work, ignore_errors=True)
    result["load_average"]["end"] = measure.load_average()
    result["duration_minutes"] = (time.monotonic() - STARTED) / 60
    result["targets"] = report.targets(result)

    write(result, arguments.output)


if __name__ == "__main__":
    main()
