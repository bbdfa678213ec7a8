"""Build and run generated projects for real, over a covering set of answers in which every
dependency tool, base variant, Debian release, Python version and process model appears."""

import concurrent.futures
import http.client
import re
import shlex
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
from conftest import record_python_ran

from template import (
    HARDENED_RUN_ARGS,
    LOCAL_HOST,
    SPOOFED_REQUEST,
    Container,
    base_image,
    build,
    container_ip,
    image_exists,
    image_size,
    private_copy,
    processes,
    readme_commands,
    render,
    run,
    wait_for_health,
    wait_for_http,
)

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("docker")]

COVERING_SET: list[dict[str, Any]] = [
    {
        "dependency_tool": "uv",
        "base_variant": "slim",
        "debian_release": "trixie",
        "python_version": "3.13",
        "process_model": "uvicorn",
        "migrations": True,
        "database": "sqlite",
        "migration_step": "separate",
    },
    {
        "dependency_tool": "poetry",
        "base_variant": "full",
        "debian_release": "bookworm",
        "python_version": "3.11",
        "process_model": "gunicorn",
        "workers": "auto",
        "migrations": True,
        "database": "sqlite",
        "migration_step": "entrypoint",
        "proxy_headers": False,
    },
    {
        "dependency_tool": "pip",
        "base_variant": "slim",
        "debian_release": "bookworm",
        "python_version": "3.14",
        "process_model": "uvicorn-workers",
        "workers": "2",
        "migrations": False,
        "proxy_headers": False,
    },
    {
        "dependency_tool": "poetry",
        "base_variant": "slim",
        "debian_release": "trixie",
        "python_version": "3.13",
        "process_model": "uvicorn-workers",
        "workers": "auto",
        "migrations": True,
        "database": "postgresql",
        "migration_step": "separate",
    },
    {
        "dependency_tool": "pip",
        "base_variant": "slim",
        "python_version": "3.11",
        "process_model": "official-image",
        "workers": "auto",
        "migrations": True,
        "database": "sqlite",
        "migration_step": "entrypoint",
    },
    {
        "dependency_tool": "uv",
        "base_variant": "full",
        "python_version": "3.11",
        "process_model": "official-image",
        "workers": "2",
        "migrations": False,
        "proxy_headers": False,
    },
    # Supported, but no stand-in base image exists here: these skip with that reason.
    {
        "dependency_tool": "uv",
        "base_variant": "alpine",
        "python_version": "3.13",
        "process_model": "gunicorn",
        "migrations": False,
    },
    {
        "dependency_tool": "pip",
        "base_variant": "slim",
        "debian_release": "trixie",
        "python_version": "3.12",
        "process_model": "uvicorn",
        "migrations": False,
    },
]


def case_id(answers: dict[str, Any]) -> str:
    return "-".join(
        str(answers.get(k, ""))
        for k in ("dependency_tool", "base_variant", "python_version", "process_model", "database")
    ).strip("-")


def run_args(answers: dict[str, Any]) -> list[str]:
    args = list(HARDENED_RUN_ARGS)
    if answers.get("database") == "sqlite":
        args += ["--tmpfs", "/app/data:uid=10001,gid=10001"]
    if answers.get("database") == "postgresql":
        # No server: the app must still start and be live; readiness reports the database.
        args += ["--env", "DATABASE_URL=postgresql+asyncpg://app:secret@db.invalid:5432/app"]
    return args


@pytest.fixture(
    scope="module",
    params=[
        pytest.param(a, id=case_id(a), marks=pytest.mark.xdist_group(case_id(a)))
        for a in COVERING_SET
    ],
)
def built(request: pytest.FixtureRequest, work_dir: Path) -> tuple[dict[str, Any], Path, str]:
    answers = request.param
    project = render(answers, work_dir)
    base = base_image(project)
    if not image_exists(base):
        pytest.skip(
            f"no local image {base}: the stand-ins have no python:3.12 and no -alpine "
            "(the render and hadolint tests still cover it)"
        )
    tag = f"fdt-test/{case_id(answers).lower()}"
    build(project, tag)
    return answers, project, tag


def test_tests_stage_runs_the_project_tests_in_the_image_python(
    built: tuple[dict[str, Any], Path, str], work_dir: Path
) -> None:
    answers, project, tag = built
    output = build(project, f"{tag}-tests", target="tests")
    assert re.search(r"\d+ passed", output), output[-2000:]
    record_python_ran(work_dir, f"Python {answers['python_version']} (image): {case_id(answers)}")


def test_container_serves_and_turns_healthy_as_non_root_on_a_read_only_filesystem(
    built: tuple[dict[str, Any], Path, str],
) -> None:
    answers, _, tag = built
    with Container(tag, *run_args(answers)) as container:
        seconds = wait_for_http(f"http://{container.ip}:{answers.get('port', 8000)}/healthz")
        assert seconds < 15, container.logs()
        assert wait_for_health(container.id) == "healthy", container.logs()
        assert container.exec("id", "-u").strip() == "10001"
        url = f"http://{container.ip}:{answers.get('port', 8000)}/readyz"
        try:
            status = urllib.request.urlopen(
                urllib.request.Request(url, headers=LOCAL_HOST), timeout=10
            ).status
        except urllib.error.HTTPError as error:
            status = error.code
        # Live but not ready without a database server, or on a database that was never
        # migrated (only the entrypoint step migrates in a plain docker run).
        ready = not answers["migrations"] or (
            answers["database"] == "sqlite" and answers["migration_step"] == "entrypoint"
        )
        assert status == (200 if ready else 503), container.logs()


def worker_count(container: str, process_model: str) -> int:
    lines = processes(container)
    if process_model == "uvicorn-workers":
        # With one worker, Uvicorn serves from its main process, without a supervisor.
        return sum("multiprocessing.spawn" in line for line in lines) or 1
    return sum("gunicorn" in line for line in lines) - 1  # all but the master


# `nproc` as a 64-core host without a CPU quota shows it to a container.
NPROC_64 = "#!/bin/sh\necho 64\n"


@pytest.mark.parametrize(
    ("extra_args", "expected"),
    [
        (["--cpus", "1"], 1),
        (["--env", "WEB_CONCURRENCY=3"], 3),
        (["--env", "MAX_WORKERS=1"], 1),
        (["--mount", "type=bind,src={nproc_64},dst=/opt/venv/bin/nproc,ro"], 4),
    ],
    ids=["cpus-1", "web-concurrency-3", "max-workers-1", "64-cores-capped-at-4"],
)
def test_process_tree_matches_the_process_model_and_worker_count(
    built: tuple[dict[str, Any], Path, str], extra_args: list[str], expected: int, tmp_path: Path
) -> None:
    answers, _, tag = built
    model = answers["process_model"]
    nproc_64 = tmp_path / "nproc"
    nproc_64.write_text(NPROC_64)
    nproc_64.chmod(0o755)
    extra_args = [arg.format(nproc_64=nproc_64) for arg in extra_args]
    with Container(tag, *run_args(answers), *extra_args) as container:
        wait_for_http(f"http://{container.ip}:8000/healthz")
        time.sleep(1)  # workers after the first may still be booting
        pid1 = container.exec("cat", "/proc/1/cmdline").replace("\0", " ")
        if model == "uvicorn":
            # One process, whatever the environment says: replicate containers instead.
            assert "uvicorn" in pid1
            assert len(processes(container.id)) == 1, processes(container.id)
            return
        assert ("gunicorn" if model in ("gunicorn", "official-image") else "uvicorn") in pid1
        fixed = answers.get("workers", "auto") != "auto"
        if fixed and "WEB_CONCURRENCY=3" not in extra_args:
            expected = int(answers["workers"])  # a fixed count ignores quota, cores and cap
        assert worker_count(container.id, model) == expected, processes(container.id)


def test_forwarded_headers_are_believed_from_loopback_only_when_proxy_headers_is_on(
    built: tuple[dict[str, Any], Path, str],
) -> None:
    """The default trusted address is 127.0.0.1; `proxy_headers: no` must ignore even that,
    in every process model (Gunicorn's own default would trust it)."""
    answers, _, tag = built
    port = str(answers.get("port", 8000))
    # The public name the probe sends, and the app's local names for its health check.
    hosts = "ALLOWED_HOSTS=api.example.test,localhost,127.0.0.1"
    with Container(tag, *run_args(answers), "--env", hosts) as container:
        wait_for_http(f"http://{container.ip}:{port}/healthz")
        from_loopback = container.exec("python", "-c", SPOOFED_REQUEST, "127.0.0.1", port, "/items")
        from_host = run(["python3", "-c", SPOOFED_REQUEST, container.ip, port, "/items"]).stdout

    believed = "https://api.example.test/items/"
    ignored = "http://api.example.test/items/"
    location = from_loopback.split()[-1]
    assert location == (believed if answers.get("proxy_headers", True) else ignored)
    assert from_host.split()[-1] == ignored


def test_readme_docker_run_commands_migrate_and_serve(
    built: tuple[dict[str, Any], Path, str],
) -> None:
    """The README's `docker run` lines, as written, with this test's image, volume and
    port: the migration step first (where there is one), then the server."""
    answers, project, tag = built
    slug, volume = "my-service", f"fdt-readme-{uuid.uuid4().hex[:8]}"
    unreachable = "postgresql+asyncpg://app:secret@db.invalid:5432/app"
    commands = []
    for line in readme_commands(project):
        if line.startswith("docker run "):
            line = line.replace(f"{slug}-data:", f"{volume}:").replace(
                "postgresql+asyncpg://...", unreachable
            )
            commands.append([tag if word == slug else word for word in shlex.split(line)])
    *migration, serve = commands
    assert len(migration) == (1 if answers.get("migrations") else 0), commands
    try:
        for command in migration:
            step = run(
                [*command[:2], "--env", "DATABASE_WAIT_SECONDS=2", *command[2:]], check=False
            )
            if answers.get("database") == "postgresql":  # no server here: a clear failure
                assert step.returncode != 0
                output = step.stdout + step.stderr  # log lines on stdout (LOG_FORMAT)
                assert "db.invalid:5432/app did not accept connections" in output, output
                assert "secret" not in output and "Traceback" not in output
            else:
                assert step.returncode == 0, step.stdout + step.stderr
        # Detached, and published on a free host port: tests run side by side.
        published = [re.sub(r"^(\d+):(\d+)$", r"127.0.0.1::\2", word) for word in serve]
        server = run([*published[:2], "--detach", *published[2:]]).stdout.strip()
        try:
            url = f"http://{container_ip(server)}:{answers.get('port', 8000)}"
            wait_for_http(f"{url}/healthz")
            if answers.get("database") != "postgresql":  # the server reads the migrated data
                items = urllib.request.Request(f"{url}/items/", headers=LOCAL_HOST)
                assert urllib.request.urlopen(items, timeout=10).status == 200
        finally:
            run(["docker", "rm", "--force", server], check=False)
    finally:
        run(["docker", "volume", "rm", "--force", volume], check=False)


def closed_after_idle(ip: str, seconds: float) -> bool:
    """Whether the server closes a keep-alive connection left idle for `seconds`."""
    with socket.create_connection((ip, 8000), timeout=5) as connection:
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        reply = connection.makefile("rb")
        assert reply.readline().split()[1] == b"200"
        length = 0
        while (line := reply.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        reply.read(length)
        time.sleep(seconds)
        connection.settimeout(0.5)
        try:
            return connection.recv(1) == b""
        except TimeoutError:
            return False


def test_idle_keep_alive_outlasts_a_load_balancer_behind_a_proxy_and_follows_its_setting(
    built: tuple[dict[str, Any], Path, str],
) -> None:
    """75 s behind a proxy (load balancers idle out at 60 s), the servers' 5 s without one,
    in every process model; KEEP_ALIVE_SECONDS changes it."""
    answers, _, tag = built
    with Container(tag, *run_args(answers)) as container:
        wait_for_http(f"http://{container.ip}:8000/healthz")
        closed_by_default = closed_after_idle(container.ip, 6)
    with Container(tag, *run_args(answers), "--env", "KEEP_ALIVE_SECONDS=1") as container:
        wait_for_http(f"http://{container.ip}:8000/healthz")
        closed_when_set = closed_after_idle(container.ip, 2.5)
    assert closed_by_default == (not answers.get("proxy_headers", True))
    assert closed_when_set


def slow_request(ip: str, started: threading.Event) -> int:
    """A request still being received when the server is told to stop."""
    body = b'{"name": ""}'
    with socket.create_connection((ip, 8000), timeout=15) as connection:
        connection.sendall(
            b"POST /items/ HTTP/1.1\r\nHost: app\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body[:5]
        )
        started.set()
        time.sleep(2)  # docker stop happens now
        connection.sendall(body[5:])
        response = connection.makefile("rb").readline()
    return int(response.split()[1])


def test_docker_stop_lets_in_flight_requests_finish_and_exits_0(
    built: tuple[dict[str, Any], Path, str],
) -> None:
    answers, _, tag = built
    with Container(tag, *run_args(answers)) as container:
        ip = container.ip
        wait_for_http(f"http://{ip}:8000/healthz")
        stopping = threading.Event()
        done = threading.Event()

        def load() -> tuple[int, list[str], list[float], list[float]]:
            ok, failures, reset, refused = 0, [], [], []
            while not done.is_set():
                connection = http.client.HTTPConnection(ip, 8000, timeout=5)
                try:
                    connection.connect()
                except OSError as error:
                    # Once the server stops listening (or the container is gone), new
                    # connections are refused; before that, none may be.
                    if not stopping.is_set():
                        failures.append(f"connect: {error!r}")
                    refused.append(time.monotonic())
                    connection.close()
                    time.sleep(0.01)
                    continue
                try:
                    connection.request("GET", "/healthz", headers=LOCAL_HOST)
                    response = connection.getresponse()
                    response.read()
                    ok += response.status == 200
                    if response.status != 200:
                        failures.append(f"HTTP {response.status}")
                except ConnectionError as error:
                    # Accepted by the kernel, then reset: the listener closed with the
                    # connection still in its backlog. No process model drains that
                    # (docs/guides/deploy-compose.md); anything else is a failure.
                    if not stopping.is_set():
                        failures.append(repr(error))
                    reset.append(time.monotonic())
                except OSError as error:
                    failures.append(repr(error))
                finally:
                    connection.close()
            return ok, failures, reset, refused

        with concurrent.futures.ThreadPoolExecutor(5) as pool:
            clients = [pool.submit(load) for _ in range(3)]
            in_flight_started = threading.Event()
            in_flight = pool.submit(slow_request, ip, in_flight_started)
            in_flight_started.wait(10)
            time.sleep(0.5)
            started = time.monotonic()
            stopping.set()
            run(["docker", "stop", container.id])
            stop_seconds = time.monotonic() - started
            done.set()
            results = [c.result() for c in clients]
            in_flight_status = in_flight.result()
        exit_code = run(
            ["docker", "inspect", "--format", "{{.State.ExitCode}}", container.id]
        ).stdout.strip()
        logs = container.logs()
    assert sum(ok for ok, _, _, _ in results) > 0
    assert [f for _, fs, _, _ in results for f in fs] == [], logs
    # Resets only at the moment the listener closes (when connections start to be
    # refused), never later, while the server drains what it accepted.
    resets = [at for _, _, at_times, _ in results for at in at_times]
    closed = min([*resets, *(at for _, _, _, at_times in results for at in at_times)], default=0)
    # Within 2 s: with uvicorn-workers the last resets came 1.2 s after the first refusal
    # on this machine (its workers stop in turn); later ones would be lost drained work.
    late = [round(at - closed, 2) for at in resets if at - closed > 2]
    assert not late, f"connections reset {late} s after the listener closed"
    assert in_flight_status == 422, "the request in flight at SIGTERM was not answered"
    assert exit_code == "0", logs
    assert stop_seconds < 9, f"stop took {stop_seconds:.1f} s: SIGTERM was not handled"
    assert "Error while closing socket" not in logs
    # Gunicorn 25.1+ would try to make its control socket on the read-only root.
    assert "Control server error" not in logs


def test_code_change_rebuild_reuses_every_dependency_layer(
    built: tuple[dict[str, Any], Path, str],
    tmp_path: Path,
) -> None:
    answers, project, tag = built
    changed = tmp_path / "project"
    private_copy(project, changed)
    package = answers.get("package_name", "app")
    main = changed / package / "main.py"
    main.write_text(main.read_text() + "\n# a one-line code change\n")
    output = build(changed, f"{tag}-changed")
    install_steps = [
        line for line in output.splitlines() if re.search(r"^#\d+ \[build \d+/\d+\] RUN", line)
    ]
    assert install_steps, output[-3000:]
    for step in install_steps:
        number = step.split()[0]
        assert f"{number} CACHED" in output, f"not reused: {step}"


def test_runtime_image_holds_no_dependency_tool_compiler_or_tests(
    built: tuple[dict[str, Any], Path, str],
) -> None:
    answers, _, tag = built
    probe = (
        "import shutil, pathlib; print([t for t in ('uv', 'poetry', 'pip-compile', 'gcc') if shutil.which(t)],"
        " pathlib.Path('/app/tests').exists())"
    )
    output = run(
        ["docker", "run", "--rm", "--entrypoint", "python", tag, "-c", probe]
    ).stdout.strip()
    if answers["base_variant"] == "full" or answers["process_model"] == "official-image":
        assert output.endswith("False"), output  # full images ship gcc by design
    else:
        assert output == "[] False", output


def test_runtime_image_is_base_plus_dependencies_and_little_else(
    built: tuple[dict[str, Any], Path, str],
) -> None:
    _, project, tag = built
    base, runtime = image_size(base_image(project)), image_size(tag)
    venv = int(
        run(
            ["docker", "run", "--rm", "--entrypoint", "du", tag, "-sb", "/opt/venv"]
        ).stdout.split()[0]
    )
    print(
        f"{tag}: base {base / 1e6:.0f} MB, dependencies {venv / 1e6:.0f} MB, image {runtime / 1e6:.0f} MB"
    )
    assert runtime - base <= 1.1 * venv + 1_000_000, "build tools or caches were left behind"
