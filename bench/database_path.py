"""The database path: the generated app's item routes against the same routes on the raw
driver and on the sync-session pattern (`bench/baseline/raw.py` and `sync.py`), on SQLite
and on PostgreSQL. Every server is one Uvicorn process limited to 1 CPU, on the same base
image; the three share one database (they are loaded in turns), migrated by the generated
image and filled with a page of items."""

import json
from contextlib import ExitStack
from typing import Any

from bench import measure
from bench.load import Request, ratio, throughput
from bench.log import log
from bench.run import Run
from template import HARDENED_RUN_ARGS, Container, base_image

DATABASES = {"sqlite": {}, "postgresql": {"database": "postgresql"}}
SERVERS = ("generated", "raw", "sync")
# A full page for the list endpoint (its default limit is 50).
ITEMS = 50


def endpoints(url: str) -> dict[str, Request]:
    return {
        "item read": Request(f"{url}/items/1"),
        "list": Request(f"{url}/items/?limit={ITEMS}"),
        "create": Request(f"{url}/items/", body=json.dumps(measure.ITEM)),
    }


def start_servers(database: str, run: Run, stack: ExitStack) -> dict[str, str]:
    """The three servers on one database; their URLs by server."""
    answers = DATABASES[database]
    image = run.image(answers)
    baseline = run.baseline(base_image(run.project(answers)))
    data = run.data(database, image, "app", f"{measure.PREFIX}-db-{database}-data")
    urls = {}
    for server in SERVERS:
        name = f"{measure.PREFIX}-db-{database}-{server}"
        if server == "generated":
            server_image, args = image, measure.run_args(answers, data.args)
        else:
            env = ["--env", f"APP={server}", "--env", f"DATABASE_URL={data.url}"]
            server_image, args = baseline, [*HARDENED_RUN_ARGS, *data.args, *env]
        container = stack.enter_context(
            Container(server_image, "--name", name, "--cpus", "1", *args)
        )
        url = f"http://{container.ip}:{measure.PORT}"
        measure.wait_until_serving(url)
        urls[server] = url
    for _ in range(ITEMS):
        measure.create_item(urls["generated"])
    return urls


def database_path(run: Run) -> list[dict[str, Any]]:
    rows = []
    for database in DATABASES:
        with ExitStack() as stack:
            log(f"database path, {database}: starting the generated app, raw and sync")
            urls = start_servers(database, run, stack)
            requests = {server: endpoints(url) for server, url in urls.items()}
            for endpoint in endpoints(""):
                log(f"database path, {database}: {endpoint}")
                load_average = measure.load_average()[0]
                measured = throughput(
                    {server: requests[server][endpoint] for server in SERVERS},
                    run.settings.compare,
                )
                rows.append(
                    {
                        "database": database,
                        "endpoint": endpoint,
                        "servers": measured,
                        "over_raw": ratio(measured, "generated", "raw"),
                        "over_sync": ratio(measured, "generated", "sync"),
                        "load_average_1min": load_average,
                    }
                )
    return rows
