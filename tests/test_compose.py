"""The generated compose stack: one `docker compose up --wait` brings the service up with its
database and its migration step; data survives restarts; migrations run exactly once."""

import json
import socket
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from template import (
    LOCAL_HOST,
    Compose,
    alembic_versions_command,
    head_revision,
    private_copy,
    render,
    run,
    wait_for_http,
)

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("docker")]

# Every character that means something in a URL: the app builds its URL from parts.
PASSWORD = "p@ss%40w/rd:x#y?z"
STACKS: list[dict[str, Any]] = [
    {
        "dependency_tool": "uv",
        "process_model": "uvicorn",
        "database": "sqlite",
        "migration_step": "separate",
    },
    {
        "dependency_tool": "poetry",
        "process_model": "gunicorn",
        "workers": "2",
        "database": "sqlite",
        "migration_step": "entrypoint",
    },
    {
        "dependency_tool": "pip",
        "process_model": "uvicorn-workers",
        "database": "postgresql",
        "migration_step": "separate",
    },
    {
        "dependency_tool": "uv",
        "process_model": "gunicorn",
        "workers": "auto",
        "database": "postgresql",
        "migration_step": "entrypoint",
    },
]


def stack_id(answers: dict[str, Any]) -> str:
    return f"{answers['database']}-{answers['migration_step']}-{answers['process_model']}"


@pytest.fixture(
    params=[
        pytest.param(a, id=stack_id(a), marks=pytest.mark.xdist_group(f"compose-{stack_id(a)}"))
        for a in STACKS
    ],
)
def stack(request: pytest.FixtureRequest, work_dir: Path, tmp_path: Path) -> Any:
    answers = {"python_version": "3.13", "migrations": True, **request.param}
    project = tmp_path / "project"
    private_copy(render(answers, work_dir), project)
    # As the README says: copy .env.example, then fill in the required password.
    run(["cp", ".env.example", ".env"], cwd=project)
    env_file = project / ".env"
    env_file.write_text(
        env_file.read_text().replace("DATABASE_PASSWORD=\n", f"DATABASE_PASSWORD='{PASSWORD}'\n")
    )
    name = f"fdt-{stack_id(answers)}-{tmp_path.name}".lower().replace("_", "-")[:60]
    with Compose(project, name) as compose:
        yield answers, compose


def request_json(url: str, body: dict[str, Any] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", **LOCAL_HOST}
    req = urllib.request.Request(url, data=data, headers=headers)
    with urllib.request.urlopen(req, timeout=10) as response:
        return json.loads(response.read())


def up(compose: Compose, *args: str) -> str:
    output = compose("up", "--build", "--wait", "--wait-timeout", "120", *args)
    for url in compose.app_urls():
        wait_for_http(f"{url}/readyz")
    return output


def test_stack_comes_up_migrated_and_keeps_its_data_across_restarts(stack: Any) -> None:
    _, compose = stack
    up(compose)
    [url] = compose.app_urls()
    created = request_json(f"{url}/items/", {"name": "kept"})
    for container in compose("ps", "--all", "--quiet").split():
        log_config = run(
            ["docker", "inspect", "--format", "{{json .HostConfig.LogConfig}}", container]
        )
        assert json.loads(log_config.stdout) == {
            "Type": "json-file",
            "Config": {"max-file": "3", "max-size": "10m"},
        }, f"{container}: logs grow without bound"

    compose("restart", "app")
    [url] = compose.app_urls()
    wait_for_http(f"{url}/readyz")
    assert request_json(f"{url}/items/{created['id']}") == created

    compose("down")
    up(compose)
    [url] = compose.app_urls()
    assert request_json(f"{url}/items/{created['id']}") == created

    compose("down", "--volumes")
    up(compose)
    [url] = compose.app_urls()
    assert request_json(f"{url}/items/") == []  # a fresh, migrated, empty database


def test_replicas_with_workers_migrate_exactly_once(stack: Any) -> None:
    answers, compose = stack
    if answers["database"] != "postgresql":
        pytest.skip("replicas share a database only with PostgreSQL")
    (compose.project / ".env").write_text(f"DATABASE_PASSWORD='{PASSWORD}'\nWEB_CONCURRENCY=4\n")
    up(compose, "--scale", "app=3")
    assert len(compose.app_urls()) == 3
    versions = compose("exec", "-T", "db", *alembic_versions_command(), check=False)
    logs = compose("logs", "--no-color")
    assert versions.split() == [head_revision(compose.project)], versions + logs
    for error in ("already exists", "DuplicateTable", "UniqueViolation"):
        assert error not in logs


def test_migration_step_waits_for_a_database_that_starts_late(stack: Any) -> None:
    answers, compose = stack
    if answers["database"] != "postgresql" or answers["migration_step"] != "separate":
        pytest.skip("the separate step against a PostgreSQL server")
    compose("build")
    migrate = subprocess.Popen(
        [*compose.base, "run", "--rm", "--no-deps", "migrate"],
        cwd=compose.project,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        run(["sleep", "4"])
        compose("up", "--detach", "db")
        output, _ = migrate.communicate(timeout=120)
    finally:
        migrate.kill()
    assert migrate.returncode == 0, output
    assert "Waiting for the database" in output
    assert "Running upgrade  -> 0001" in output


def test_database_that_never_comes_fails_the_step_with_a_clear_message(stack: Any) -> None:
    answers, compose = stack
    if answers["database"] != "postgresql" or answers["migration_step"] != "separate":
        pytest.skip("the separate step against a PostgreSQL server")
    compose("build")
    output = compose(
        "run", "--rm", "--no-deps", "--env", "DATABASE_WAIT_SECONDS=3", "migrate", check=False
    )
    assert "did not accept connections within 3.0 s" in output, output
    assert "Traceback" not in output


def test_broken_migration_keeps_the_app_from_starting(stack: Any) -> None:
    _, compose = stack
    head = head_revision(compose.project)
    broken = compose.project / "migrations" / "versions" / "9999_broken.py"
    broken.write_text(
        f'revision = "9999"\ndown_revision = "{head}"\n\n\n'
        "def upgrade() -> None:\n"
        '    raise RuntimeError("deliberately broken migration")\n'
    )
    output = compose("up", "--build", "--wait", "--wait-timeout", "60", check=False)
    logs = compose("logs", "--no-color")
    assert "deliberately broken migration" in logs, output + logs
    assert "Migration of" in logs and "failed; the app must not start" in logs
    for container in compose("ps", "--all", "--quiet", "app").split():
        state = run(
            [
                "docker",
                "inspect",
                "--format",
                "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}",
                container,
            ]
        ).stdout.split()
        assert "healthy" not in state, f"an app started on the old schema: {state}"


def test_published_ports_are_on_this_machine_only_unless_app_bind_says_otherwise(
    stack: Any,
) -> None:
    _, compose = stack
    base = ["docker", "compose", "--file", "compose.yaml", "config", "--format", "json"]
    env = {"DATABASE_PASSWORD": PASSWORD}
    local = json.loads(run(base, cwd=compose.project, env=env).stdout)
    server = json.loads(run(base, cwd=compose.project, env={**env, "APP_BIND": "0.0.0.0"}).stdout)

    assert [p["host_ip"] for p in local["services"]["app"]["ports"]] == ["127.0.0.1"]
    assert [p["host_ip"] for p in server["services"]["app"]["ports"]] == ["0.0.0.0"]


def test_make_dev_stack_migrates_and_publishes_the_database_for_make_migrate(stack: Any) -> None:
    """`make dev` runs the stack with compose.dev.yaml: with the migrate step in the
    entrypoint it must still migrate, and with PostgreSQL it publishes the database on
    127.0.0.1, where .env.example points `make run` and `make migrate`."""
    answers, compose = stack
    if answers["migration_step"] != "entrypoint":
        pytest.skip("the separate step is the migrate service, which compose.dev.yaml keeps")
    postgresql = answers["database"] == "postgresql"
    if postgresql:
        with socket.socket() as probe:  # a free port on this machine for the database
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        with (compose.project / ".env").open("a") as env_file:
            env_file.write(f"DATABASE_PORT={port}\n")
    dev = [*compose.base[:-2], "--file", "compose.dev.yaml", *compose.base[-2:]]
    compose.base = dev
    up(compose)
    [url] = compose.app_urls()
    assert request_json(f"{url}/items/", {"name": "in dev"})["name"] == "in dev"
    if postgresql:
        # `make migrate` on this machine: the project's .env, read as the app reads it.
        migrate = run(
            [
                "docker",
                "run",
                "--rm",
                "--network",
                "host",
                "--volume",
                f"{compose.project / '.env'}:/app/.env:ro",
                "--entrypoint",
                "python",
                compose.env["IMAGE"],
                "-m",
                f"{answers.get('package_name', 'app')}.db.migrate",
            ],
            check=False,
        )
        assert migrate.returncode == 0, migrate.stdout + migrate.stderr
