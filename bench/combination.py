"""One answer set: its image, builds, start, throughput beside the bare app in the same
process model, memory per worker, and `docker stop` under load."""

from contextlib import ExitStack
from typing import Any

from bench import answers as answer_sets
from bench import measure
from bench.load import LoadSettings, Request, memory_under_load, ratio, stop_under_load, throughput
from bench.log import log
from bench.run import Run
from template import Container, base_image, image_exists


def load_phase(
    tag: str,
    bare_image: str,
    answers: dict[str, Any],
    args: list[str],
    cpus: int,
    load: LoadSettings,
) -> dict[str, Any]:
    """The app and the bare app, with the same CPU limit and in the same process model
    with as many workers, loaded in turns."""
    model = answers["process_model"]
    limit = ["--cpus", str(cpus)]
    with ExitStack() as stack:
        app = stack.enter_context(Container(tag, "--name", f"{tag}-load-{cpus}", *limit, *args))
        app_url = f"http://{app.ip}:{measure.PORT}"
        measure.wait_until_serving(app_url)
        idle = measure.memory(app.id)
        requests = {"/healthz": Request(f"{app_url}/healthz")}
        note = ""
        if not answers["migrations"] and model != "uvicorn":
            note = "not measured: without a database each worker keeps its own items in memory"
        else:
            item = measure.create_item(app_url)
            requests["/items/{id}"] = Request(f"{app_url}/items/{item}")
        env = ["--env", f"MODEL={model}", "--env", f"WORKERS={idle['workers']}"]
        name = f"{tag}-bare-{cpus}"
        bare = stack.enter_context(Container(bare_image, "--name", name, *limit, *env))
        bare_url = f"http://{bare.ip}:{measure.PORT}"
        measure.wait_until_serving(bare_url)
        bare_idle = measure.memory(bare.id)
        requests["bare app"] = Request(f"{bare_url}/healthz")
        log(f"{answer_sets.label(answers)}, {cpus} CPU: wrk on {', '.join(requests)}")
        load_average = measure.load_average()[0]
        results = throughput(requests, load)
        busiest = requests.get("/items/{id}", requests["/healthz"])
        under_load = memory_under_load(app.id, busiest, load)

    rows = [
        {
            "cpus": cpus,
            "endpoint": endpoint,
            **results[endpoint],
            "over_baseline_same_model": ratio(results, endpoint, "bare app"),
            "load_average_1min": load_average,
        }
        for endpoint in requests
        if endpoint.startswith("/")
    ]
    return {
        "rows": rows,
        "baseline": {"cpus": cpus, "model": model, **results["bare app"]},
        "memory": {"cpus": cpus, "idle": idle, "under_load": under_load, "bare_idle": bare_idle},
        "note": note,
    }


def bench_answer_set(answers: dict[str, Any], run: Run, with_load: bool = True) -> dict[str, Any]:
    """Everything measured for one answer set; `with_load` False measures the image, the
    builds and the start only (an answer that changes neither the server nor the code)."""
    label = answer_sets.label(answers)
    full = answer_sets.with_defaults(answers)
    entry: dict[str, Any] = {"label": label, "answers": full}
    project = run.project(answers)
    base = base_image(project)
    if not image_exists(base):
        entry["skipped"] = (
            f"no local image `{base}`: this machine's stand-ins have no Python 3.12 and no "
            "Alpine images, and no registry is reachable to pull them"
        )
        log(f"{label}: skipped ({entry['skipped']})")
        return entry
    repetitions = run.settings.repetitions
    package = full.get("package_name", "app")
    tag = f"{measure.PREFIX}-{label}"

    log(f"{label}: builds")
    entry["build"] = measure.builds(project, tag, package, repetitions, run.cleanup)
    run.images[label] = tag
    entry["image"] = measure.image_sizes(tag, base)
    data = None
    if full["migrations"]:
        data = run.data(full["database"], tag, package, f"{tag}-data").args
    args = measure.run_args(full, data)
    log(f"{label}: cold starts")
    entry["start"] = measure.cold_starts(tag, args, repetitions["start"], f"{tag}-start")
    entry["load"], entry["baselines"], entry["memory"], entry["load_notes"] = [], [], [], []
    if not with_load:
        entry["load_notes"].append(
            "throughput, memory and `docker stop` not measured: this answer changes the base "
            "image, not the server or the code (see the answer set it differs from)"
        )
        return entry
    # One Uvicorn process uses one CPU, however many the container may use.
    for cpus in (1,) if full["process_model"] == "uvicorn" else (1, 2):
        phase = load_phase(tag, run.baseline(base), full, args, cpus, run.settings.load)
        entry["load"] += phase["rows"]
        entry["baselines"].append(phase["baseline"])
        entry["memory"].append(phase["memory"])
        if phase["note"] and phase["note"] not in entry["load_notes"]:
            entry["load_notes"].append(phase["note"])

    log(f"{label}: docker stop under load")
    entry["shutdown"] = stop_under_load(tag, args, f"{tag}-stop")
    return entry
