"""Docker Swarm (orchestrator: swarm): deploy/swarm/'s stack keeps its rules for every
answer set of the matrix that asks for Swarm, and runs for real in swarm mode on this
machine's engine: `make stack-deploy` from `.env`, rolling updates without a failed
request, an automatic rollback, nginx retrying past a killed replica, secrets in no
`docker inspect`.

This kernel has no IPVS, so the stack is reached as on any host with nginx in front: by
its host-mode published port (service VIPs and the routing mesh do not route here)."""

import json
import re
import shutil
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import copier
import pytest
import yaml
from swarm import (
    DEPLOYED_ANSWERS,
    build_postgres_file_env_image,
    docker_out,
    free_port,
    remove_stack,
    swarm_mode,
)

from template import (
    alembic_versions_command,
    applicable,
    database_answers,
    matrix,
    private_copy,
    render,
    run,
    template_snapshot,
)

# The matrix's Swarm answer sets, and nginx in front of each process model, which the
# matrix's rotation does not pair with Swarm.
SWARM_ANSWERS = [answers for answers in matrix() if answers.get("orchestrator") == "swarm"] + [
    applicable(
        {
            "dependency_tool": "uv",
            "base_variant": "slim",
            "process_model": model,
            "workers": workers,
            "python_version": "3.11" if model == "official-image" else "3.13",
            "proxy_headers": True,
            "reverse_proxy": "nginx",
            "orchestrator": "swarm",
            "port": 8080,
            **database_answers(database),
        }
    )
    for model, workers in [
        ("uvicorn", "auto"),
        ("uvicorn-workers", "3"),
        ("gunicorn", "auto"),
        ("official-image", "2"),
    ]
    for database in ("postgresql", "none")
]
# Keys `docker stack deploy` ignores or rejects: a stack that relied on them would not do
# what it says.
IGNORED_BY_STACK_DEPLOY = {"build", "depends_on", "restart", "security_opt", "container_name"}


def swarm_id(answers: dict[str, Any]) -> str:
    database = answers.get("database", "nodb") if answers["migrations"] else "nodb"
    proxy = answers.get("reverse_proxy", "none") if answers["proxy_headers"] else "noproxy"
    workers = answers.get("workers", "1")
    return f"{answers['process_model']}-{workers}-{database}-{proxy}-{answers['dependency_tool']}"


def stack_config(project: Path, **env: str) -> dict[str, Any]:
    """The stack file as `docker stack deploy` reads it, variables filled in."""
    result = run(
        ["docker", "stack", "config", "--compose-file", "deploy/swarm/stack.yaml"],
        cwd=project,
        env={"APP_IMAGE": "registry.example.test/app:build-1", "STACK_NAME": "demo", **env},
    )
    return yaml.safe_load(result.stdout)


def seconds_until_unhealthy(project: Path, service: dict[str, Any]) -> float:
    """start period + interval x retries of the image's HEALTHCHECK, with what the service
    overrides: how long a replica that never answers takes to count as unhealthy."""
    line = re.search(r"^HEALTHCHECK (.*)$", (project / "Dockerfile").read_text(), re.M)
    assert line, "the image has a HEALTHCHECK"
    options = dict(re.findall(r"--([a-z-]+)=(\S+)", line.group(1)))
    overrides = {k.replace("_", "-"): v for k, v in service.get("healthcheck", {}).items()}
    assert "test" not in overrides, "the image's own probe"
    options.update(overrides)
    # A probe starts each interval, or when the one before timed out, whichever is later.
    period = max(duration(options["interval"]), duration(options["timeout"]))
    return duration(options["start-period"]) + period * int(options["retries"])


def dockerfile_cmd(project: Path) -> list[str]:
    match = re.search(r"^CMD (\[.*\])$", (project / "Dockerfile").read_text(), re.M)
    assert match, "the Dockerfile has an exec-form CMD"
    return list(json.loads(match.group(1)))


def duration(value: str) -> float:
    total = 0.0
    for number, unit in re.findall(r"([\d.]+)(ms|s|m|h)", value):
        total += float(number) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
    return total


def megabytes(value: str | int) -> float:
    return int(value) / 2**20  # docker stack config gives bytes


# Static: the stack's rules, for every Swarm answer set ------------------------------------


@pytest.fixture(params=SWARM_ANSWERS, ids=[swarm_id(a) for a in SWARM_ANSWERS])
def swarm_project(request: pytest.FixtureRequest, work_dir: Path) -> tuple[dict[str, Any], Path]:
    if shutil.which("docker") is None:
        pytest.skip("the docker CLI reads the stack file (docker stack config)")
    return request.param, render(request.param, work_dir)


def test_matrix_covers_the_stack_variants() -> None:
    seen = {(a["process_model"], a["migrations"], a.get("reverse_proxy")) for a in SWARM_ANSWERS}
    assert {model for model, _, _ in seen} == {
        "uvicorn",
        "uvicorn-workers",
        "gunicorn",
        "official-image",
    }
    assert {migrations for _, migrations, _ in seen} == {True, False}
    assert {proxy for _, _, proxy in seen} >= {"nginx", "none"}


def test_stack_uses_only_what_docker_stack_deploy_honours(
    swarm_project: tuple[dict[str, Any], Path],
) -> None:
    _, project = swarm_project
    raw = yaml.safe_load((project / "deploy/swarm/stack.yaml").read_text())
    for name, service in raw["services"].items():
        assert not IGNORED_BY_STACK_DEPLOY & set(service), name
    stack_config(project)  # parses, and every variable has a value or a default


def test_app_replicas_update_start_first_and_roll_back_within_the_healthcheck(
    swarm_project: tuple[dict[str, Any], Path],
) -> None:
    answers, project = swarm_project
    app = stack_config(project)["services"]["app"]
    deploy = app["deploy"]
    assert deploy["replicas"] >= 2
    update = deploy["update_config"]
    assert update["order"] == "start-first"
    assert update["failure_action"] == "rollback"
    # A replica that never becomes healthy must fail within the monitored window.
    assert duration(update["monitor"]) > seconds_until_unhealthy(project, app)
    assert deploy["rollback_config"]["order"] == "start-first"
    assert deploy["restart_policy"]["condition"] == "any"
    # Memory for each server process: multi-process models get more per replica.
    processes = float(deploy["resources"]["limits"]["cpus"])
    if answers["process_model"] != "uvicorn" and answers.get("workers", "auto") != "auto":
        assert processes == int(answers["workers"])
    limit = megabytes(deploy["resources"]["limits"]["memory"])
    reservation = megabytes(deploy["resources"]["reservations"]["memory"])
    assert limit >= 100 * processes  # a loaded worker holds about 83 MB (docs/benchmarks.md)
    assert 0 < reservation < limit


def test_migrations_run_as_a_job_and_the_app_waits_for_the_schema(
    swarm_project: tuple[dict[str, Any], Path],
) -> None:
    answers, project = swarm_project
    services = stack_config(project)["services"]
    if not answers["migrations"]:
        assert "migrate" not in services
        assert "command" not in services["app"], "the image's own CMD"
        return
    package = answers.get("package_name", "app")
    migrate, app = services["migrate"], services["app"]
    assert migrate["deploy"]["mode"] == "replicated-job"
    assert migrate["image"] == app["image"]
    assert migrate["entrypoint"] == ["python", "-m", f"{package}.db.migrate"]
    shell, flag, script, _name, *server = app["command"]
    assert [shell, flag] == ["sh", "-c"]
    assert script == f'python -m {package}.db.wait_for_head && exec "$@"'
    assert server == dockerfile_cmd(project), "the stack runs the image's own server command"


def test_the_password_is_a_docker_secret_read_from_a_file(
    swarm_project: tuple[dict[str, Any], Path],
) -> None:
    answers, project = swarm_project
    config = stack_config(project)
    for name, service in config["services"].items():
        for key in service.get("environment") or {}:
            assert "PASSWORD" not in key or key.endswith("_FILE"), (name, key)
            assert key != "DATABASE_URL", name
        assert "env_file" not in service, f"{name}: env_file would copy .env into the spec"
    if answers.get("database") != "postgresql" or not answers["migrations"]:
        return
    secret = config["secrets"]["database_password"]
    assert secret["external"] is True
    assert secret["name"] == "demo_database_password"
    for name in ("app", "migrate"):
        service = config["services"][name]
        assert {"source": "database_password"} in service["secrets"]
        assert service["environment"]["DATABASE_PASSWORD_FILE"] == "/run/secrets/database_password"
    db = config["services"]["db"]
    assert db["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/database_password"
    assert db["deploy"]["replicas"] == 1
    assert db["deploy"]["placement"]["constraints"] == ["node.labels.demo.database == true"]
    assert db["volumes"][0]["source"] == "db-data"


def test_nginx_reaches_the_replicas_by_dns_round_robin_and_is_trusted_alone(
    swarm_project: tuple[dict[str, Any], Path],
) -> None:
    answers, project = swarm_project
    config = stack_config(project)
    app = config["services"]["app"]
    if answers.get("reverse_proxy") != "nginx":
        assert "proxy" not in config["services"]
        assert [p["target"] for p in app["ports"]] == [answers["port"]]
        return
    proxy = config["services"]["proxy"]
    assert app["deploy"]["endpoint_mode"] == "dnsrr"  # tasks.app: every replica, no VIP
    assert {p["mode"] for p in proxy["ports"]} == {"host"}
    assert "ports" not in app
    # The compose proxy's configuration, mounted as a config, not a copy of it.
    template = config["configs"]["nginx_template"]["file"]
    assert Path(template) == project / "nginx" / "default.conf.template"
    assert "set $app http://${APP_UPSTREAM};" in Path(template).read_text()
    assert proxy["environment"]["APP_UPSTREAM"] == f"tasks.app:{answers['port']}"
    assert {"source": "nginx_template", "target": "/etc/nginx/templates/default.conf.template"} in [
        {k: v for k, v in c.items() if k in ("source", "target")} for c in proxy["configs"]
    ]
    [subnet] = [c["subnet"] for c in config["networks"]["edge"]["ipam"]["config"]]
    assert app["environment"]["FORWARDED_ALLOW_IPS"] == subnet
    assert set(proxy["networks"]) == {"edge"}, "nginx shares the edge network with the app only"


def test_stack_script_and_make_targets(swarm_project: tuple[dict[str, Any], Path]) -> None:
    _, project = swarm_project
    run(["sh", "-n", "deploy/swarm/stack.sh"], cwd=project)
    if shutil.which("shellcheck"):
        run(["shellcheck", "--shell=sh", "deploy/swarm/stack.sh"], cwd=project)
    targets = run(["make", "help"], cwd=project).stdout
    for target in ("stack-deploy", "stack-update", "stack-rollback", "stack-rm"):
        assert target in targets
    assert "make stack-deploy" in (project / "README.md").read_text()


def test_swarm_with_sqlite_is_rejected_with_the_reason(work_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="SQLite is a file on one node's volume"):
        copier.run_copy(
            str(template_snapshot(work_dir)),
            tmp_path,
            data={"database": "sqlite", "orchestrator": "swarm"},
            defaults=True,
            quiet=True,
        )


def test_no_orchestrator_leaves_no_deploy_folder(work_dir: Path) -> None:
    answers = {**matrix()[0], "orchestrator": "none"}
    assert not (render(answers, work_dir) / "deploy").exists()


# For real: one answer set, in swarm mode ---------------------------------------------------

ANSWERS = DEPLOYED_ANSWERS
# Characters a URL would need escaped: the settings build the URL from parts.
PASSWORD = "sw@rm-s3cret/pass:word#42"
LOAD_TIMEOUT = 120.0


@pytest.fixture(scope="session")
def swarm(docker: None) -> Iterator[None]:
    """Swarm mode for the session (tests/swarm.py): a swarm made here is left afterwards."""
    with swarm_mode():
        yield


@pytest.fixture(scope="session")
def registry(docker: None) -> Iterator[str]:
    """A registry on loopback, as the nodes of a larger swarm would pull from."""
    container = docker_out("run", "--detach", "--publish", "127.0.0.1::5000", "registry:2")
    try:
        port = docker_out("port", container, "5000/tcp").splitlines()[0].rsplit(":", 1)[1]
        yield f"127.0.0.1:{port}"
    finally:
        docker_out("rm", "--force", "--volumes", container, check=False)


@pytest.fixture(scope="session")
def postgres_image(docker: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """postgres:17 reading POSTGRES_PASSWORD_FILE (tests/swarm.py)."""
    tag = f"fdt-swarm-postgres:{uuid.uuid4().hex[:8]}"
    yield build_postgres_file_env_image(tmp_path_factory.mktemp("postgres-file-env"), tag)
    docker_out("image", "rm", tag, check=False)


@dataclass
class Deployment:
    project: Path
    stack: str
    env: dict[str, str]
    https_port: int
    prometheus_port: int

    def make(self, target: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run(["make", target], cwd=self.project, env=self.env, check=check, timeout=900)

    def service(self, name: str) -> str:
        return f"{self.stack}_{name}"

    def containers(self, name: str) -> list[str]:
        return docker_out(
            "ps", "--quiet", "--filter", f"label=com.docker.swarm.service.name={self.service(name)}"
        ).split()

    def spec_image(self, name: str) -> str:
        return docker_out(
            "service",
            "inspect",
            "--format",
            "{{.Spec.TaskTemplate.ContainerSpec.Image}}",
            self.service(name),
        )

    def running_images(self, name: str) -> list[str]:
        return docker_out(
            "service",
            "ps",
            "--filter",
            "desired-state=running",
            "--format",
            "{{.Image}} {{.CurrentState}}",
            self.service(name),
        ).splitlines()

    def url(self, path: str) -> str:
        return f"https://localhost:{self.https_port}{path}"

    def prometheus(self, path: str) -> Any:
        url = f"http://127.0.0.1:{self.prometheus_port}/api/v1/{path}"
        with urllib.request.urlopen(url, timeout=30) as response:
            return json.loads(response.read())["data"]


def https(url: str, body: dict[str, Any] | None = None) -> tuple[int, Any, str | None]:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # make cert's self-signed one
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30, context=context) as response:
        return response.status, json.loads(response.read()), response.headers.get("Location")


def title(deployment: Deployment) -> str:
    return str(https(deployment.url("/openapi.json"))[1]["info"]["title"])


def wait_until_app_is_healthy(deployment: Deployment, replicas: int, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while True:
        containers = deployment.containers("app")
        states = [
            docker_out("inspect", "--format", "{{.State.Health.Status}}", c, check=False)
            for c in containers
        ]
        if states.count("healthy") == replicas == len(containers):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"app replicas not all healthy: {states}")
        time.sleep(1)


@dataclass
class Load:
    """Requests through nginx from a few clients, until stopped (at most LOAD_TIMEOUT)."""

    url: str
    clients: int = 2
    pause: float = 0.05  # a steady load, not a benchmark: the node also runs the update
    answered: int = 0
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _client(self) -> None:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        deadline = time.monotonic() + LOAD_TIMEOUT
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url, timeout=30, context=context) as response:
                    response.read()
                    outcome = None if response.status == 200 else str(response.status)
            except (OSError, urllib.error.URLError) as error:
                outcome = repr(error)
            with self._lock:
                self.answered += 1
                if outcome:
                    self.failures.append(outcome)
            time.sleep(self.pause)

    def __enter__(self) -> "Load":
        self._threads = [threading.Thread(target=self._client) for _ in range(self.clients)]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()


@pytest.fixture(scope="module")
def deployment(
    swarm: None,
    registry: str,
    postgres_image: str,
    work_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Deployment]:
    project = private_copy(render(ANSWERS, work_dir), tmp_path_factory.mktemp("swarm") / "p")
    # The README's steps: copy .env.example, fill in the secret, make a certificate.
    run(["cp", ".env.example", ".env"], cwd=project)
    env_file = project / ".env"
    assert "DATABASE_PASSWORD=\n" in env_file.read_text()
    https_port, prometheus_port = free_port(), free_port()
    env_file.write_text(
        env_file.read_text().replace("DATABASE_PASSWORD=\n", f"DATABASE_PASSWORD={PASSWORD}\n")
        + f"HTTPS_PORT={https_port}\nHTTP_PORT={free_port()}\nPOSTGRES_IMAGE={postgres_image}\n"
        # The guide's way to deploy Prometheus with the stack (deploy/swarm/observability.yaml).
        + f"PROMETHEUS=1\nPROMETHEUS_PORT={prometheus_port}\n"
    )
    run(["make", "cert"], cwd=project)
    stack = f"fdt-swarm-{uuid.uuid4().hex[:8]}"
    env = {"STACK_NAME": stack, "IMAGE": f"{registry}/{stack}"}
    deployment = Deployment(project, stack, env, https_port, prometheus_port)
    try:
        deployment.make("stack-deploy")
        yield deployment
    finally:
        remove_everything(deployment)


def remove_everything(deployment: Deployment) -> None:
    remove_stack(deployment.stack)
    images = docker_out("image", "ls", "--format", "{{.Repository}}:{{.Tag}}", check=False)
    for image in images.splitlines():
        if image.startswith(deployment.env["IMAGE"]):
            docker_out("image", "rm", image, check=False)


def deploy_answers_through_nginx_with_healthy_replicas_and_one_migration(
    deployment: Deployment,
) -> None:
    wait_until_app_is_healthy(deployment, replicas=3)
    tasks = docker_out(
        "service", "ps", "--format", "{{.CurrentState}}", deployment.service("migrate")
    ).splitlines()
    assert len(tasks) == 1 and tasks[0].startswith("Complete"), tasks
    [db] = deployment.containers("db")
    versions = docker_out("exec", db, *alembic_versions_command())
    assert len(versions.split()) == 1, versions
    status, created, location = https(deployment.url("/items/"), {"name": "through swarm"})
    assert status == 201
    # The app believes nginx (on the pinned edge subnet) about the scheme and the host.
    assert location == deployment.url(f"/items/{created['id']}")
    assert https(deployment.url(f"/items/{created['id']}"))[1] == created


def prometheus_scrapes_every_replica_over_the_overlay_network(deployment: Deployment) -> None:
    """The stack's Prometheus finds each replica through tasks.app on the `metrics` network,
    and its counts add up over them: the one item created so far was counted once."""
    address = (
        f'{{{{(index .NetworkSettings.Networks "{deployment.service("metrics")}").IPAddress}}}}'
    )
    replicas = {docker_out("inspect", "--format", address, c) for c in deployment.containers("app")}
    created = 'sum(http_requests_total{method="POST",route="/items/",status="201"})'
    deadline = time.monotonic() + 120  # the first scrapes come within one interval (15 s)
    while True:
        targets = deployment.prometheus("targets")["activeTargets"]
        up = {t["labels"]["instance"].rsplit(":", 1)[0] for t in targets if t["health"] == "up"}
        counted = deployment.prometheus(f"query?query={urllib.parse.quote(created)}")["result"]
        if up == replicas and [float(sample["value"][1]) for sample in counted] == [1.0]:
            break
        assert time.monotonic() < deadline, (replicas, targets, counted)
        time.sleep(2)


def password_is_in_no_stack_file_service_or_container(deployment: Deployment) -> None:
    assert PASSWORD not in (deployment.project / "deploy/swarm/stack.yaml").read_text()
    services = docker_out("stack", "services", "--quiet", deployment.stack).split()
    containers = docker_out(
        "ps", "--all", "--quiet", "--filter", f"label=com.docker.stack.namespace={deployment.stack}"
    ).split()
    assert services and containers
    assert PASSWORD not in docker_out("service", "inspect", *services)
    assert PASSWORD not in docker_out("inspect", *containers)
    for container in deployment.containers("app"):
        environment = docker_out("exec", container, "cat", "/proc/1/environ")
        assert PASSWORD not in environment
    logs = run(["docker", "service", "logs", deployment.service("app")], check=False)
    assert PASSWORD not in logs.stdout + logs.stderr


def rolling_update_under_load_replaces_every_replica_without_a_failed_request(
    deployment: Deployment,
) -> None:
    settings = deployment.project / "app" / "settings.py"
    settings.write_text(settings.read_text().replace('"My Service"', '"My Service v2"', 1))
    before = deployment.running_images("app")
    with Load(deployment.url("/items/")) as load:
        output = deployment.make("stack-update").stdout
    assert load.failures == [], f"{len(load.failures)} of {load.answered}: {load.failures[:5]}"
    assert load.answered > 50
    [new_image] = re.findall(r"^Deploying (\S+) as stack", output, re.M)
    after = deployment.running_images("app")
    assert len(after) == 3 and all(line.startswith(f"{new_image} Running") for line in after), after
    assert not set(after) & set(before)
    assert title(deployment) == "My Service v2"


def update_that_fails_its_healthcheck_rolls_back_to_the_version_that_ran_before(
    deployment: Deployment,
) -> None:
    spec_before = deployment.spec_image("app")
    [image_before] = {line.split()[0] for line in deployment.running_images("app")}
    title_before = title(deployment)
    assert title_before == "My Service v2", "the rolling update's version runs"
    health = deployment.project / "app" / "api" / "health.py"
    working = health.read_text()
    health.write_text(working.replace('"/healthz"', '"/healthz-moved"', 1))
    try:
        with Load(deployment.url("/items/")) as load:
            result = deployment.make("stack-update", check=False)
    finally:
        health.write_text(working)
    assert result.returncode != 0
    assert "failed and was rolled back" in result.stderr + result.stdout
    state = docker_out(
        "service", "inspect", "--format", "{{.UpdateStatus.State}}", deployment.service("app")
    )
    assert state == "rollback_completed"
    assert deployment.spec_image("app") == spec_before, "Swarm went back to the spec before"
    assert load.failures == [], f"{len(load.failures)} of {load.answered}: {load.failures[:5]}"
    wait_until_app_is_healthy(deployment, replicas=3)
    after = deployment.running_images("app")
    assert len(after) == 3 and all(line.startswith(f"{image_before} Running") for line in after)
    assert title(deployment) == title_before


def killed_replica_is_retried_by_nginx_and_replaced_by_swarm(deployment: Deployment) -> None:
    victim, *_ = deployment.containers("app")
    with Load(deployment.url("/items/")) as load:
        time.sleep(2)
        docker_out("kill", victim)
        # nginx still resolves the dead address for a while (Docker's DNS, its resolver's cache).
        time.sleep(15)
    assert load.failures == [], f"{len(load.failures)} of {load.answered}: {load.failures[:5]}"
    # A busy node starts a replica slowly: it waits for the schema, then for its workers.
    wait_until_app_is_healthy(deployment, replicas=3, timeout=300)
    assert victim not in deployment.containers("app")


def stack_rm_removes_the_stack_and_keeps_the_data(deployment: Deployment) -> None:
    deployment.make("stack-rm")
    assert docker_out("stack", "ls", "--format", "{{.Name}}").split().count(deployment.stack) == 0
    volumes = docker_out("volume", "ls", "--quiet").split()
    assert f"{deployment.stack}_db-data" in volumes


@pytest.mark.docker
def test_the_stack_deploys_updates_rolls_back_heals_and_is_removed(deployment: Deployment) -> None:
    """The stack's life, step by step, each step on the state the one before left (the
    rollback returns to the rolling update's version). One test, so that the steps run in
    this order on one deployment whatever selects or schedules them (separate tests once
    ran on two pytest-xdist workers, each with a stack of its own, and the failed update of
    a fresh deployment rolled back to the first version)."""
    deploy_answers_through_nginx_with_healthy_replicas_and_one_migration(deployment)
    prometheus_scrapes_every_replica_over_the_overlay_network(deployment)
    password_is_in_no_stack_file_service_or_container(deployment)
    rolling_update_under_load_replaces_every_replica_without_a_failed_request(deployment)
    update_that_fails_its_healthcheck_rolls_back_to_the_version_that_ran_before(deployment)
    killed_replica_is_retried_by_nginx_and_replaced_by_swarm(deployment)
    stack_rm_removes_the_stack_and_keeps_the_data(deployment)
