"""What users would write instead, side by side with the template's default image in one
run: the FastAPI documentation's single-stage `pip install` + Uvicorn image, and the seeds'
multi-stage Poetry image with Gunicorn and 4 Uvicorn workers (`bench/seeds/`). Each is
built from a generated project, so the app's code is the same, on the same base image."""

from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench import answers as answer_sets
from bench import measure
from bench.load import Request, memory_under_load, ratio, stop_under_load, throughput
from bench.log import log
from bench.run import Run
from template import Container, base_image, image_size

SEEDS = Path(__file__).resolve().parent / "seeds"
OURS = "template (default answers)"
# name -> the answers that render the files its Dockerfile expects, the Dockerfile, and
# where its app keeps the SQLite database (the app's ./data, under its WORKDIR).
# The app's ALLOWED_HOSTS admits the container's address, which the clients use.
APP_ENV = ["--env", "ALLOWED_HOSTS=*"]
ALTERNATIVES: dict[str, dict[str, Any]] = {
    "FastAPI docs: pip, one stage, Uvicorn": {
        "answers": {"dependency_tool": "pip"},
        "dockerfile": SEEDS / "Dockerfile.pip",
        "data": "/code/data",
    },
    "seeds: Poetry, multi-stage, Gunicorn + 4 workers": {
        "answers": {"dependency_tool": "poetry", "process_model": "gunicorn"},
        "dockerfile": SEEDS / "Dockerfile.poetry",
        "data": "/app/data",
    },
}


def tag_of(name: str) -> str:
    return f"{measure.PREFIX}-seed-{list(ALTERNATIVES).index(name)}"


def build_alternatives(run: Run, ours: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Image size, builds and cold start of each alternative (ours: from its answer set)."""
    repetitions = run.settings.repetitions
    base = ours["image"]["base_image"]
    entries: dict[str, dict[str, Any]] = {}
    for name, alternative in ALTERNATIVES.items():
        project = run.project(alternative["answers"])
        if base_image(project) != base:
            raise AssertionError(f"{name}: not on {base}, the default answers' base image")
        log(f"side by side: {name}: builds")
        tag = tag_of(name)
        counts = {"cold": repetitions["seed_cold"], "change": repetitions["seed_change"]}
        build = measure.builds(project, tag, "app", counts, run.cleanup, alternative["dockerfile"])
        size = image_size(tag)
        args = [*APP_ENV, "--volume", f"{tag}-start-data:{alternative['data']}"]
        run.cleanup.volumes.add(f"{tag}-start-data")
        log(f"side by side: {name}: cold starts")
        start = measure.cold_starts(tag, args, repetitions["start"], f"{tag}-start")
        entries[name] = {
            "build": build,
            "image": {"base_bytes": ours["image"]["base_bytes"], "runtime_bytes": size},
            "start": start,
        }
    return entries


def load_phase(run: Run, ours_tag: str) -> dict[str, Any]:
    """All three on 1 CPU, loaded in turns, reading one SQLite database (on one volume,
    mounted where each app looks for it)."""
    volume = f"{measure.PREFIX}-side-data"
    data = run.data("sqlite", ours_tag, "app", volume)
    servers = {OURS: (ours_tag, measure.run_args({}, data.args))}
    for name, alternative in ALTERNATIVES.items():
        servers[name] = (tag_of(name), [*APP_ENV, "--volume", f"{volume}:{alternative['data']}"])
    with ExitStack() as stack:
        requests: dict[str, dict[str, Request]] = {"/healthz": {}, "/items/{id}": {}}
        containers, idle = {}, {}
        item: int | None = None
        for index, (name, (tag, args)) in enumerate(servers.items()):
            container_name = f"{measure.PREFIX}-side-{index}"
            container = stack.enter_context(
                Container(tag, "--name", container_name, "--cpus", "1", *args)
            )
            url = f"http://{container.ip}:{measure.PORT}"
            measure.wait_until_serving(url)
            idle[name] = measure.memory(container.id)
            containers[name] = container.id
            # The database starts empty: the first server stores the item all of them read.
            item = item or measure.create_item(url)
            requests["/healthz"][name] = Request(f"{url}/healthz")
            requests["/items/{id}"][name] = Request(f"{url}/items/{item}")
        rows = {}
        for endpoint, by_server in requests.items():
            log(f"side by side: wrk on {endpoint}")
            measured = throughput(by_server, run.settings.compare)
            # Throughput of error answers (a 404 for a missing item) is not the endpoint's.
            wrong = {
                name: m["error_statuses"] for name, m in measured.items() if m["error_statuses"]
            }
            if wrong:
                raise AssertionError(f"side by side, {endpoint}: error statuses {wrong}")
            rows[endpoint] = {
                "servers": measured,
                "ours_over": {name: ratio(measured, OURS, name) for name in ALTERNATIVES},
            }
        under_load = {
            name: memory_under_load(
                containers[name], requests["/items/{id}"][name], run.settings.compare
            )
            for name in servers
        }
    return {"throughput": rows, "memory": {"idle": idle, "under_load": under_load}}


def side_by_side(run: Run, ours: dict[str, Any]) -> dict[str, Any]:
    """`ours` is the default answer set's entry, measured earlier in the same run."""
    if answer_sets.label({}) not in run.images:
        raise AssertionError("the default answer set must be measured before the side by side")
    ours_tag = run.images[answer_sets.label({})]
    entries = build_alternatives(run, ours)
    phase = load_phase(run, ours_tag)
    for name, alternative in ALTERNATIVES.items():
        log(f"side by side: {name}: docker stop under load")
        volume = f"{tag_of(name)}-stop-data"
        run.cleanup.volumes.add(volume)
        args = [*APP_ENV, "--volume", f"{volume}:{alternative['data']}"]
        entries[name]["shutdown"] = stop_under_load(tag_of(name), args, f"{tag_of(name)}-stop")
    entries = {
        OURS: {key: ours[key] for key in ("build", "image", "start", "shutdown")},
        **entries,
    }
    return {"images": entries, **phase}
