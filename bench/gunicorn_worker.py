"""Gunicorn's native ASGI worker (`--worker-class asgi`, Gunicorn >= 25.1) against the
uvicorn-worker class that the template's `gunicorn` model runs, in the same image with the
same gunicorn.conf.py: only the worker class differs (GUNICORN_CMD_ARGS overrides the
configuration file)."""

import re
from contextlib import ExitStack
from typing import Any

from bench import measure
from bench.load import Request, memory_under_load, ratio, throughput
from bench.log import log
from bench.run import Run
from template import Container

ANSWERS = {"process_model": "gunicorn"}
# worker -> its run arguments: the generated configuration's (a uvicorn-worker class), or
# Gunicorn's own.
WORKERS = {
    "uvicorn-worker": [],
    "asgi": ["--env", "GUNICORN_CMD_ARGS=--worker-class asgi"],
}


def worker_class(logs: str) -> str:
    """The worker class Gunicorn says it started."""
    # A plain or a JSON log line: the class name ends at the quote closing the message.
    match = re.search(r"Using worker: ([\w.:]+)", logs)
    if not match:
        raise AssertionError(f"Gunicorn did not say which worker it uses:\n{logs[-2000:]}")
    return match.group(1)


def compare_workers(run: Run) -> dict[str, Any]:
    image = run.image(ANSWERS)
    data = run.data("sqlite", image, "app", f"{measure.PREFIX}-worker-data")
    rows, memory = [], []
    for cpus in (1, 2):
        with ExitStack() as stack:
            requests: dict[str, dict[str, Request]] = {"/healthz": {}, "/items/{id}": {}}
            containers, idle, classes = {}, {}, {}
            for worker, extra in WORKERS.items():
                name = f"{measure.PREFIX}-worker-{worker}-{cpus}"
                args = [*measure.run_args(ANSWERS, data.args), *extra, "--cpus", str(cpus)]
                container = stack.enter_context(Container(image, "--name", name, *args))
                url = f"http://{container.ip}:{measure.PORT}"
                measure.wait_until_serving(url)
                classes[worker] = worker_class(container.logs())
                if (classes[worker] == "asgi") != (worker == "asgi"):
                    raise AssertionError(f"{name} runs {classes[worker]}, not the {worker} worker")
                containers[worker] = container.id
                idle[worker] = measure.memory(container.id)
                requests["/healthz"][worker] = Request(f"{url}/healthz")
                item = measure.create_item(url)
                requests["/items/{id}"][worker] = Request(f"{url}/items/{item}")
            for endpoint, by_worker in requests.items():
                log(f"gunicorn workers, {cpus} CPU: wrk on {endpoint}")
                measured = throughput(by_worker, run.settings.compare)
                rows.append(
                    {
                        "cpus": cpus,
                        "endpoint": endpoint,
                        "workers": measured,
                        "asgi_over_uvicorn_worker": ratio(measured, "asgi", "uvicorn-worker"),
                    }
                )
            for worker in WORKERS:
                under_load = memory_under_load(
                    containers[worker], requests["/items/{id}"][worker], run.settings.compare
                )
                memory.append(
                    {"cpus": cpus, "worker": worker, "idle": idle[worker], "under_load": under_load}
                )
    return {"rows": rows, "memory": memory, "worker_classes": classes}
