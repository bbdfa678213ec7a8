"""Database faults, for real: generated images against a database that was never
migrated, is read-only, stopped or hung answer 503 (with Retry-After), never 500 and never
a hang; and a PostgreSQL project's own test suite passes on PostgreSQL.

The answer sets are test_docker.py's, in its xdist groups, so each image is built once.
"""

import concurrent.futures
import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_docker import COVERING_SET, case_id

from template import HARDENED_RUN_ARGS, Container, build, render, run, wait_for_http

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("docker")]

SQLITE = COVERING_SET[0]
POSTGRESQL = next(a for a in COVERING_SET if a.get("database") == "postgresql")
assert SQLITE.get("database") == "sqlite"
# Short timeouts, so that a hung database shows within a test's patience.
TIMEOUTS = ["DATABASE_CONNECT_TIMEOUT_SECONDS=2", "DATABASE_STATEMENT_TIMEOUT_SECONDS=2"]
DATABASE_URL = "postgresql+asyncpg://app:secret@db:5432/app"
PACKAGE = "app"  # the covering set keeps the default package name


def env_args(*assignments: str) -> list[str]:
    # ALLOWED_HOSTS: the tests reach containers by address.
    return [arg for a in ("ALLOWED_HOSTS=*", *TIMEOUTS, *assignments) for arg in ("--env", a)]


def request(
    url: str, method: str = "GET", body: bytes | None = None
) -> tuple[int, dict[str, str], str, float]:
    """Status, headers, body and seconds of one request, errors included."""
    headers = {"Content-Type": "application/json"} if body else {}
    started = time.monotonic()
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, body, headers, method=method), timeout=30
        ) as response:
            status, answer, text = response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        status, answer, text = error.code, error.headers, error.read()
    headers = {name.lower(): value for name, value in answer.items()}
    return status, headers, text.decode(), time.monotonic() - started


def statuses_of_concurrent_reads(url: str, count: int) -> list[int]:
    """Concurrent requests reach every worker of the container, not just one."""
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda _: request(url)[0], range(count)))


def assert_unavailable(answer: tuple[int, dict[str, str], str, float], logs: str) -> None:
    status, headers, _, _ = answer
    assert status == 503, (answer, logs)
    assert headers.get("retry-after") == "5", answer
    assert "Traceback" not in logs, logs


def built(answers: dict[str, Any], work_dir: Path) -> tuple[Path, str]:
    project = render(answers, work_dir)
    tag = f"fdt-test/{case_id(answers).lower()}"  # test_docker.py's tag: the same image
    build(project, tag)
    return project, tag


@pytest.fixture
def network() -> Iterator[str]:
    name = f"fdt-faults-{uuid.uuid4().hex[:8]}"
    run(["docker", "network", "create", name])
    yield name
    run(["docker", "network", "rm", name], check=False)


@pytest.fixture
def postgres(network: str) -> Iterator[Container]:
    with Container(
        "postgres:17",
        *("--network", network, "--network-alias", "db"),
        *("--env", "POSTGRES_USER=app", "--env", "POSTGRES_PASSWORD=secret"),
    ) as container:
        yield container


def wait_for_postgres(postgres: Container, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    probe = ["docker", "exec", postgres.id, "pg_isready", "-h", "127.0.0.1", "-U", "app"]
    while run(probe, check=False).returncode != 0:
        assert time.monotonic() < deadline, postgres.logs()
        time.sleep(0.5)


def migrate(tag: str, *args: str) -> None:
    run(
        [
            "docker",
            "run",
            "--rm",
            *args,
            *env_args("DATABASE_WAIT_SECONDS=60"),
            tag,
            "python",
            "-m",
            f"{PACKAGE}.db.migrate",
        ]
    )


@pytest.mark.xdist_group(case_id(SQLITE))
def test_sqlite_never_migrated_is_not_ready_and_items_are_503(work_dir: Path) -> None:
    _, tag = built(SQLITE, work_dir)
    data = "/app/data:uid=10001,gid=10001"
    with Container(tag, *HARDENED_RUN_ARGS, "--tmpfs", data, *env_args()) as app:
        url = f"http://{app.ip}:8000"
        wait_for_http(f"{url}/healthz")
        ready = request(f"{url}/readyz")
        items = request(f"{url}/items/")
        created = request(f"{url}/items/", "POST", b'{"name": "Widget"}')
        logs = app.logs()
    assert_unavailable(ready, logs)
    assert "run the migrations" in ready[2]
    assert_unavailable(items, logs)
    assert_unavailable(created, logs)


@pytest.mark.xdist_group(case_id(SQLITE))
def test_sqlite_read_only_database_is_not_ready_and_writes_are_503(work_dir: Path) -> None:
    _, tag = built(SQLITE, work_dir)
    volume = f"fdt-faults-{uuid.uuid4().hex[:8]}"
    try:
        migrate(tag, "--volume", f"{volume}:/app/data")
        read_only = ["--volume", f"{volume}:/app/data:ro"]
        with Container(tag, *HARDENED_RUN_ARGS, *read_only, *env_args()) as app:
            url = f"http://{app.ip}:8000"
            wait_for_http(f"{url}/healthz")
            ready = request(f"{url}/readyz")
            created = request(f"{url}/items/", "POST", b'{"name": "Widget"}')
            listed = request(f"{url}/items/")
            logs = app.logs()
    finally:
        run(["docker", "volume", "rm", "--force", volume], check=False)
    assert_unavailable(ready, logs)
    assert "read-only" in ready[2]
    assert_unavailable(created, logs)
    assert listed[0] in (200, 503), (listed, logs)  # reads may still work; never a 500


@pytest.mark.xdist_group(case_id(POSTGRESQL))
def test_postgresql_never_migrated_is_not_ready_and_items_are_503(
    work_dir: Path, network: str, postgres: Container
) -> None:
    _, tag = built(POSTGRESQL, work_dir)
    args = ["--network", network, *HARDENED_RUN_ARGS]
    with Container(tag, *args, *env_args(f"DATABASE_URL={DATABASE_URL}")) as app:
        url = f"http://{app.ip}:8000"
        wait_for_http(f"{url}/healthz")
        for _ in range(60):  # the server may still be starting
            ready = request(f"{url}/readyz")
            if "never migrated" in ready[2]:
                break
            time.sleep(1)
        items = request(f"{url}/items/")
        logs = app.logs()
    assert_unavailable(ready, logs)
    assert "never migrated" in ready[2], ready
    assert_unavailable(items, logs)


@pytest.mark.xdist_group(case_id(POSTGRESQL))
def test_postgresql_stopped_or_hung_gives_quick_503s_and_the_app_recovers(
    work_dir: Path, network: str, postgres: Container
) -> None:
    _, tag = built(POSTGRESQL, work_dir)
    database = f"DATABASE_URL={DATABASE_URL}"
    migrate(tag, "--network", network, "--env", database)
    args = ["--network", network, *HARDENED_RUN_ARGS]
    with Container(tag, *args, *env_args(database)) as app:
        url = f"http://{app.ip}:8000"
        wait_for_http(f"{url}/readyz", timeout=120)  # workers start slowly on a busy host
        item = request(f"{url}/items/", "POST", b'{"name": "Widget"}')
        assert item[0] == 201, item
        item_url = f"{url}/items/{json.loads(item[2])['id']}"
        # Every worker now has connections in its pool.
        assert statuses_of_concurrent_reads(item_url, 40) == [200] * 40

        run(["docker", "stop", postgres.id])
        stopped = [request(item_url) for _ in range(3)]
        stopped_ready = request(f"{url}/readyz")
        run(["docker", "start", postgres.id])
        wait_for_postgres(postgres)
        # At once, without waiting for /readyz: the pooled connections that the restart
        # closed are replaced when taken, in every worker.
        after_restart = statuses_of_concurrent_reads(item_url, 16)

        run(["docker", "pause", postgres.id])
        try:
            hung = [request(item_url), request(f"{url}/readyz")]
        finally:
            run(["docker", "unpause", postgres.id])
        # At once too: the connections whose statements timed out were closed.
        after_unpause = statuses_of_concurrent_reads(item_url, 16)
        logs = app.logs()

    for answer in [*stopped, stopped_ready, *hung]:
        assert_unavailable(answer, logs)
        # A few timeouts of 2 s at most (the statement's, then closing its connection),
        # far from the client's patience (30 s).
        assert answer[3] < 10, (answer, logs)
    assert after_restart == [200] * 16, (after_restart, logs)
    assert after_unpause == [200] * 16, (after_unpause, logs)
    assert "secret" not in logs, logs
    assert "database unavailable" in logs, logs


@pytest.mark.xdist_group(case_id(POSTGRESQL))
def test_postgresql_project_tests_pass_on_postgresql(
    work_dir: Path, network: str, postgres: Container
) -> None:
    """TEST_DATABASE_URL: the project's suite on a real PostgreSQL (its `tests` image stage,
    on the network of the postgres stand-in), not only on SQLite."""
    project, tag = built(POSTGRESQL, work_dir)
    # Without --no-cache-filter: test_docker.py's run of this stage is reused.
    run(["docker", "build", "--target", "tests", "--tag", f"{tag}-tests", "."], cwd=project)
    wait_for_postgres(postgres)
    result = run(
        [
            "docker",
            "run",
            "--rm",
            "--network",
            network,
            "--env",
            "TEST_DATABASE_URL=postgresql+asyncpg://app:secret@db:5432/app",
            f"{tag}-tests",
            "python",
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            "-rs",
        ],
        timeout=900,
    )
    summary = result.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary, result.stdout[-3000:]
    # Only the SQLite-specific tests skip.
    skips = [line for line in result.stdout.splitlines() if line.startswith("SKIPPED")]
    assert all("SQLite" in line for line in skips), skips
