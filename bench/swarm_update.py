"""A new image rolled out under load (issue #13): `docker service update --image` of the
Swarm stack's app, against `docker compose up -d` recreating the app of the same project
(what a user on one server does), both behind the project's nginx.

One project (PostgreSQL, Gunicorn with 2 workers, nginx: the answers tests/test_swarm.py
deploys) is deployed as a stack (`make stack-deploy`, 3 replicas) and then, once the stack
is gone, as a compose stack. The new image is a one-line code change, built beforehand, so
that no build is in the window; the repetitions switch between the two images. Clients at
a fixed rate read an item over HTTPS through nginx, as users reach the app, from before the
update until a few seconds after it, and each request is classified (see Sample). This
kernel has no IPVS: the stack reaches its replicas by DNS round robin (`tasks.app`) and
publishes nginx's ports in host mode, as it does everywhere.
"""

import hashlib
import http.client
import json
import math
import os
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from swarm import (
    DEPLOYED_ANSWERS,
    build_postgres_file_env_image,
    docker_out,
    free_port,
    remove_stack,
    swarm_mode,
)

from bench import measure
from bench.log import log
from bench.run import Run
from template import proxy_network, run

ANSWERS = DEPLOYED_ANSWERS  # tests/test_swarm.py's
REPLICAS = 3  # the stack's default (APP_REPLICAS)
# A steady load well below what the stack serves, so that what the update does to
# requests shows, not a saturated machine: CLIENTS threads, each RATE requests a second.
CLIENTS = 10
RATE = 10.0
LEAD_SECONDS = 3.0  # load before the update: the steady latency to compare with
# Load after the last old replica is gone: nginx re-resolves the app every 2 s.
TAIL_SECONDS = 3.0
UPDATE_TIMEOUT = 420.0  # a rollout took 153 s at a load average of 16
PASSWORD = "bench-swarm-password"
TITLES = ("My Service", "My Service v2")  # the two images' app title (settings.app_name)


@dataclass(frozen=True)
class Sample:
    """One request: when it was sent (monotonic seconds), how long it took, and how it
    ended: `ok` (2xx); `status NNN` (an HTTP answer with an error status, from nginx or
    the app); `refused` (no connection to nginx, so no request was sent); `failed: <error>`
    (the connection was made and the request sent, then no answer: reset, closed, timed
    out), which the client cannot tell from a request that was acted on."""

    sent: float
    seconds: float
    outcome: str


def percentile(values: list[float], fraction: float) -> float:
    """Nearest rank: the smallest value at or above `fraction` of them."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def answered(sample: Sample) -> bool:
    return sample.outcome == "ok" or sample.outcome.startswith("status ")


def summarize(samples: list[Sample], start: float, end: float) -> dict[str, Any]:
    """What happened to the requests of one update. The window runs from the update's start
    to `end` (the last old replica gone, plus the tail); failures count wherever they
    happened. Latencies are those of the requests that got an answer (a refused connection
    takes no time and says nothing of it): in the window, and before the update (steady)."""
    during = [s for s in samples if start <= s.sent <= end]
    before = [s.seconds * 1000 for s in samples if s.sent < start and answered(s)]
    failed = [s for s in samples if s.outcome != "ok"]
    outcomes = Counter(s.outcome for s in samples)
    statuses = {k.split()[1]: n for k, n in outcomes.items() if k.startswith("status ")}
    errors = {k.split(": ", 1)[1]: n for k, n in outcomes.items() if k.startswith("failed: ")}
    latencies = [s.seconds * 1000 for s in during if answered(s)]
    return {
        "requests": len(samples),
        "requests_in_window": len(during),
        "window_seconds": end - start,
        "failed_requests": len(failed),
        "refused": outcomes["refused"],
        "accepted_then_failed": sum(errors.values()),
        "error_statuses": sum(statuses.values()),
        "statuses": statuses,
        "failed_by_error": errors,
        # From the first failed request to the end of the last one: how long users saw errors.
        "failure_span_seconds": (
            max(s.sent + s.seconds for s in failed) - min(s.sent for s in failed) if failed else 0.0
        ),
        "p50_ms": percentile(latencies, 0.50) if latencies else None,
        "p99_ms": percentile(latencies, 0.99) if latencies else None,
        "max_ms": max(latencies) if latencies else None,
        "steady_p99_ms": percentile(before, 0.99) if before else None,
    }


# The load ---------------------------------------------------------------------------------


def insecure_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # `make cert`'s self-signed certificate
    return context


@dataclass
class Load:
    """CLIENTS threads, each sending a GET of `path` RATE times a second over its own
    keep-alive HTTPS connection to nginx (a new one after a failure or a close), as
    browsers and API clients do. A late request is sent at once, without catching up."""

    port: int
    path: str
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _connection(self, context: ssl.SSLContext) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=30, context=context)

    def _request(self, connection: http.client.HTTPSConnection) -> tuple[str, bool]:
        """The outcome, and whether the connection can carry the next request."""
        if connection.sock is None:
            try:
                connection.connect()
            except (ConnectionRefusedError, TimeoutError, socket.gaierror):
                return "refused", False
            except OSError as error:  # the TCP connection was made, TLS failed on it
                return f"failed: {type(error).__name__}", False
        try:
            connection.request("GET", self.path, headers={"Host": "localhost"})
            response = connection.getresponse()
            response.read()
        except (OSError, http.client.HTTPException) as error:
            return f"failed: {type(error).__name__}", False
        outcome = "ok" if 200 <= response.status < 300 else f"status {response.status}"
        return outcome, not response.will_close

    def _client(self, offset: float) -> None:
        context = insecure_context()
        connection = self._connection(context)
        samples: list[Sample] = []
        due = time.monotonic() + offset
        while not self._stop.is_set():
            pause = due - time.monotonic()
            if pause > 0:
                self._stop.wait(pause)
                continue
            sent = time.monotonic()
            outcome, reusable = self._request(connection)
            samples.append(Sample(sent, time.monotonic() - sent, outcome))
            if not reusable:
                connection.close()
                connection = self._connection(context)
            due = max(due + 1 / RATE, time.monotonic())
        connection.close()
        with self._lock:
            self.samples += samples

    def __enter__(self) -> "Load":
        # Spread over the interval, so that the requests do not leave in bursts.
        self._threads = [
            threading.Thread(target=self._client, args=(i / CLIENTS / RATE,))
            for i in range(CLIENTS)
        ]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()


def https(port: int, path: str, body: dict[str, Any] | None = None) -> Any:
    connection = http.client.HTTPSConnection(
        "127.0.0.1", port, timeout=30, context=insecure_context()
    )
    try:
        data = None if body is None else json.dumps(body)
        headers = {"Host": "localhost", "Content-Type": "application/json"}
        connection.request("GET" if body is None else "POST", path, body=data, headers=headers)
        response = connection.getresponse()
        payload = response.read()
        if response.status >= 300:
            raise AssertionError(f"{path}: {response.status} {payload[:300]!r}")
        return json.loads(payload)
    finally:
        connection.close()


def wait_until_answering(port: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            https(port, "/healthz")
            return
        except (OSError, AssertionError, http.client.HTTPException):
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def title(port: int) -> str:
    return str(https(port, "/openapi.json")["info"]["title"])


# One update under load ---------------------------------------------------------------------


@dataclass(frozen=True)
class Replica:
    image: str
    healthy: bool


def replicas(*filters: str) -> list[Replica]:
    """The running containers that carry the labels, by image and health."""
    command = ["docker", "ps", "--format", "{{.Image}}\t{{.Status}}"]
    command += [arg for label in filters for arg in ("--filter", f"label={label}")]
    lines = run(command).stdout.splitlines()
    return [Replica(line.split("\t")[0], "(healthy)" in line) for line in lines]


def converged(current: list[Replica], image: str, count: int) -> bool:
    """Exactly `count` replicas, all on `image` and healthy: no old one still draining."""
    return len(current) == count and all(r.image == image and r.healthy for r in current)


@dataclass(frozen=True)
class Rollout:
    """The command that rolls `image` out, and the containers (by label) that run the app:
    done when `count` of them are on `image` and healthy."""

    command: list[str]
    cwd: Path
    env: dict[str, str]
    labels: tuple[str, ...]
    image: str
    count: int

    def start(self) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.command,
            cwd=self.cwd,
            env={**os.environ, **self.env},
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )

    def done(self) -> bool:
        return converged(replicas(*self.labels), self.image, self.count)


def update_under_load(
    port: int, path: str, rollout: Rollout, expected_title: str
) -> dict[str, Any]:
    """Start the rollout under load, wait until its command has returned and its replicas
    are replaced, keep the load on for the tail, and summarize."""
    load_average = measure.load_average()
    with Load(port, path) as load:
        time.sleep(LEAD_SECONDS)
        start = time.monotonic()
        with rollout.start() as command:
            deadline = start + UPDATE_TIMEOUT
            while command.poll() is None or not rollout.done():
                if time.monotonic() > deadline:
                    command.kill()
                    raise AssertionError(f"the update did not finish in {UPDATE_TIMEOUT:.0f} s")
                time.sleep(0.5)
            output = command.communicate()[0]
            if command.returncode:
                raise AssertionError(f"{command.args} exited {command.returncode}:\n{output}")
        replaced = time.monotonic()
        time.sleep(TAIL_SECONDS)
    result = summarize(load.samples, start, replaced + TAIL_SECONDS)
    answering = title(port)
    return {
        **result,
        # What the command did (compose names each container it stops, starts, recreates).
        "command_output": output.strip().splitlines()[-40:],
        "update_seconds": replaced - start,
        "new_code_answering": answering == expected_title,
        "load_average_1min": load_average[0],
    }


# The project, the swarm, the stacks -----------------------------------------------------------


@dataclass
class Project:
    path: Path
    name: str  # prefix of the stack, compose project and image names
    https_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)

    @property
    def image(self) -> str:
        return f"{self.name}-app"


def prepare_project(run_: Run, postgres_image: str) -> Project:
    """A private copy of the render with `.env` filled in as the README says, and a
    certificate; the second image (the code change) built beside it."""
    source = run_.project(ANSWERS)
    project = Project(run_.work / "swarm-update" / "project", f"{measure.PREFIX}-swarm")
    shutil.copytree(source, project.path, symlinks=True)
    env = (project.path / ".env.example").read_text()
    if "DATABASE_PASSWORD=\n" not in env:
        raise AssertionError(".env.example has no empty DATABASE_PASSWORD= line to fill in")
    # Host ports and a network of their own, as other stacks may run on this engine: the
    # edge subnet outside the tests' (10.200-249.x for compose, 10.254.x the stack's own).
    number = int(hashlib.sha256(measure.PREFIX.encode()).hexdigest()[:2], 16)
    edge = f"10.253.{number}.0/24"
    extra = {
        "HTTPS_PORT": project.https_port,
        "HTTP_PORT": project.http_port,
        "POSTGRES_IMAGE": postgres_image,
        "EDGE_SUBNET": edge,
    }
    env = env.replace("DATABASE_PASSWORD=\n", f"DATABASE_PASSWORD={PASSWORD}\n")
    (project.path / ".env").write_text(env + "".join(f"{k}={v}\n" for k, v in extra.items()))
    run(["make", "cert"], cwd=project.path)
    return project


def build_changed(project: Project) -> str:
    """The new release: the same project with another app title, built now, so that the
    rollout measures the update, not a build."""
    changed = project.path.parent / "changed"
    shutil.copytree(project.path, changed, symlinks=True)
    settings = changed / "app" / "settings.py"
    text = settings.read_text()
    if f'"{TITLES[0]}"' not in text:
        raise AssertionError(f"{settings} has no app name {TITLES[0]!r} to change")
    settings.write_text(text.replace(f'"{TITLES[0]}"', f'"{TITLES[1]}"', 1))
    tag = f"{project.image}:v2"
    run(["docker", "build", "--quiet", "--tag", tag, "."], cwd=changed)
    return tag


def postgres_file_env_image(run_: Run) -> str:
    """postgres:17 reading POSTGRES_PASSWORD_FILE (tests/swarm.py), removed at the end."""
    tag = f"{measure.PREFIX}-postgres-file-env"
    build_postgres_file_env_image(run_.work / "swarm-update" / "postgres", tag)
    run_.cleanup.image(tag)
    return tag


@contextmanager
def swarm_stack(project: Project) -> Iterator[None]:
    """`make stack-deploy`, and everything it made removed afterwards (the data volume, the
    secret and the node label, which `make stack-rm` keeps)."""
    env = {"STACK_NAME": project.name, "IMAGE": project.image}
    try:
        run(["make", "stack-deploy"], cwd=project.path, env=env, timeout=900)
        yield
    finally:
        remove_stack(project.name)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {timeout:.0f} s")
        time.sleep(1)


def measure_swarm(project: Project, images: list[str], repetitions: int) -> list[dict[str, Any]]:
    """`docker service update --image` of the app, switching between the two images."""
    service = f"{project.name}_app"
    label = f"com.docker.swarm.service.name={service}"
    wait_for(lambda: converged(replicas(label), images[0], REPLICAS), "the replicas healthy")
    wait_until_answering(project.https_port)
    item = https(project.https_port, "/items/", {"name": "read during the update"})
    rows = []
    for index in range(repetitions):
        image = images[(index + 1) % 2]
        log(f"swarm update: docker service update --image ({index + 1}/{repetitions})")
        command = ["docker", "service", "update", "--detach", "--no-resolve-image"]
        command += ["--image", image, service]
        row = update_under_load(
            project.https_port,
            f"/items/{item['id']}",
            Rollout(command, project.path, {}, (label,), image, REPLICAS),
            TITLES[(index + 1) % 2],
        )
        rows.append({"scenario": "swarm", "repetition": index + 1, "recreated": ["app"], **row})
    return rows


@contextmanager
def compose_stack(project: Project, image: str) -> Iterator[tuple[str, dict[str, str]]]:
    """The same project with compose, on the first image, started as `make up` does; its
    project name and environment."""
    name = f"{project.name}-compose"
    env = {
        "IMAGE": image,
        "HTTPS_PORT": str(project.https_port),
        "HTTP_PORT": str(project.http_port),
        **proxy_network(),
    }
    base = ["docker", "compose", "--project-name", name]
    try:
        run([*base, "up", "--detach", "--wait"], cwd=project.path, env=env, timeout=600)
        yield name, env
    finally:
        down = [*base, "down", "--volumes", "--timeout", "15"]
        run(down, cwd=project.path, env=env, check=False)


def recreated_services(output: list[str], project: str) -> list[str]:
    """The services whose containers `docker compose up` recreated, from its progress lines
    (`Container <project>-<service>-<n>  Recreated`)."""
    services = []
    for line in output:
        match = re.fullmatch(rf"\s*Container {re.escape(project)}-(.+)-\d+\s+Recreated\s*", line)
        if match and match.group(1) not in services:
            services.append(match.group(1))
    return services


def measure_compose(project: Project, images: list[str], repetitions: int) -> list[dict[str, Any]]:
    """`docker compose up -d` with the other image: compose recreates the app."""
    rows = []
    with compose_stack(project, images[0]) as (name, env):
        labels = (f"com.docker.compose.project={name}", "com.docker.compose.service=app")
        wait_until_answering(project.https_port)
        item = https(project.https_port, "/items/", {"name": "read during the update"})
        for index in range(repetitions):
            image = images[(index + 1) % 2]
            log(f"swarm update: docker compose up -d ({index + 1}/{repetitions})")
            command = ["docker", "compose", "--project-name", name, "up", "--detach"]
            row = update_under_load(
                project.https_port,
                f"/items/{item['id']}",
                Rollout(command, project.path, {**env, "IMAGE": image}, labels, image, 1),
                TITLES[(index + 1) % 2],
            )
            recreated = recreated_services(row["command_output"], name)
            rows.append(
                {"scenario": "compose", "repetition": index + 1, "recreated": recreated, **row}
            )
    return rows


def remove_images(repository: str) -> None:
    """Every tag of the app's repository: stack.sh tags each build, the benchmark the new
    release, and a deploy that failed midway leaves them too."""
    listing = ["image", "ls", "--format", "{{.Repository}}:{{.Tag}}", repository]
    for tag in docker_out(*listing, check=False).split():
        docker_out("image", "rm", tag, check=False)


def swarm_update(run_: Run, repetitions: int = 1) -> dict[str, Any]:
    """One rollout of each by default: on 2 busy CPUs a Swarm rollout of 3 replicas takes
    75 to 150 s, and the section 4 to 6 minutes."""
    project = prepare_project(run_, postgres_file_env_image(run_))
    try:
        v2 = build_changed(project)
        with swarm_mode():
            log("swarm update: make stack-deploy")
            with swarm_stack(project):
                spec = "{{.Spec.TaskTemplate.ContainerSpec.Image}}"
                first = docker_out("service", "inspect", "--format", spec, f"{project.name}_app")
                rows = measure_swarm(project, [first, v2], repetitions)
        log("swarm update: the same project with compose")
        rows += measure_compose(project, [first, v2], repetitions)
    finally:
        remove_images(project.image)
    return {
        "answers": ANSWERS,
        "replicas": {"swarm": REPLICAS, "compose": 1},
        "load": {"clients": CLIENTS, "rate_per_client": RATE, "path": "/items/{id}"},
        "lead_seconds": LEAD_SECONDS,
        "tail_seconds": TAIL_SECONDS,
        "rows": rows,
    }


# The report -------------------------------------------------------------------------------

SCENARIOS = {
    "swarm": f"Swarm, `docker service update --image` ({REPLICAS} replicas, start-first)",
    "compose": "compose, `docker compose up -d` (1 app container, recreated)",
}


def milliseconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def render(entry: dict[str, Any]) -> list[str]:
    """The Markdown section of a result's `swarm_update` entry."""
    from bench.report import table  # bench.report renders this section: import it late

    load = entry["load"]
    lines = [
        "## Rolling out a new image under load: Swarm against compose",
        "",
        f"One project ({', '.join(f'{k}={v}' for k, v in entry['answers'].items())}) "
        f"behind its nginx, {load['clients']} clients each reading one item "
        f"(`GET {load['path']}`) {load['rate_per_client']:.0f} times a second over "
        "keep-alive HTTPS, while a new image (a one-line code change, built beforehand) "
        "replaces the app. The window runs from the command's start until every replica "
        "runs the new image, healthy, and no old one is left, plus "
        f"{entry['tail_seconds']:.0f} s; its latencies are those of the requests sent in it "
        "that got an answer. Failed requests are counted over the whole run (from "
        f"{entry['lead_seconds']:.0f} s before the command): refused (no connection to "
        "nginx: attempts, each client trying again at its rate), accepted then failed (no "
        "answer), and error statuses. Steady p99: the requests before the command.",
        "",
    ]
    rows = []
    for row in entry["rows"]:
        statuses = ", ".join(f"{code}: {n}" for code, n in sorted(row["statuses"].items()))
        errors = ", ".join(f"{name}: {n}" for name, n in sorted(row["failed_by_error"].items()))
        rows.append(
            [
                SCENARIOS[row["scenario"]],
                str(row["repetition"]),
                f"{row['update_seconds']:.1f}",
                str(row["requests_in_window"]),
                str(row["failed_requests"]),
                str(row["refused"]),
                f"{row['accepted_then_failed']}" + (f" ({errors})" if errors else ""),
                f"{row['error_statuses']}" + (f" ({statuses})" if statuses else ""),
                f"{row['failure_span_seconds']:.1f}",
                milliseconds(row["p50_ms"]),
                milliseconds(row["p99_ms"]),
                milliseconds(row["max_ms"]),
                milliseconds(row["steady_p99_ms"]),
                "yes" if row["new_code_answering"] else "**no**",
                ", ".join(row.get("recreated", [])),
                f"{row['load_average_1min']:.1f}",
            ]
        )
    head = ["rollout", "run", "replaced in (s)", "requests in window", "failed", "refused"]
    head += ["accepted, then failed", "error statuses", "errors for (s)", "p50 ms", "p99 ms"]
    head += ["max ms", "steady p99 ms", "new code answers", "recreated", "load average"]
    return lines + table(head, rows)


def targets(entry: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Issue #13: no failed request while Swarm rolls a new image out (compose is the
    comparison, not a target). The shape of bench/targets.py's checks."""
    checks = []
    for row in (entry or {}).get("rows", []):
        if row["scenario"] == "swarm":
            checks.append(
                {
                    "target": "failed requests during a Swarm rolling update under load",
                    "subject": f"run {row['repetition']} ({row['requests_in_window']} requests)",
                    "value": row["failed_requests"],
                    "limit": "0",
                    "passed": row["failed_requests"] == 0 and row["new_code_answering"],
                }
            )
    return checks
