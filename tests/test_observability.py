"""Observability that adds up across workers, proved with the real things: a Prometheus (the
prom/prometheus image) scrapes each compose stack and counts every request exactly once,
through a worker's death; an OTLP/HTTP receiver here decodes the spans the app exports; nginx
keeps /metrics inside and hands the app its request id. That every line an app container
writes is JSON is checked for every Docker test, when tests/template.py stops it.

One stack per process model with two workers; together they cover a database (spans of
its queries), nginx in front, Uvicorn's supervisor and Gunicorn's, in the official image too.
"""

import concurrent.futures
import contextlib
import gzip
import http.client
import json
import re
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from template import (
    LOCAL_HOST,
    Compose,
    container_ip,
    json_log_lines,
    private_copy,
    process_table,
    render,
    run,
    wait_for_http,
)

PASSWORD = "obs-s3cret"
PUBLIC_HOST = "api.example.test"
# The answer sets of test_compose.py and test_proxy.py, so that their builds are reused.
STACKS: list[dict[str, Any]] = [
    {
        "dependency_tool": "pip",
        "process_model": "uvicorn-workers",
        "python_version": "3.13",
        "migrations": True,
        "database": "postgresql",
        "migration_step": "separate",
    },
    {
        "dependency_tool": "uv",
        "process_model": "gunicorn",
        "workers": "2",
        "python_version": "3.13",
        "migrations": False,
        "proxy_headers": True,
        "reverse_proxy": "nginx",
    },
    {
        "dependency_tool": "uv",
        "process_model": "official-image",
        "workers": "2",
        "base_variant": "full",
        "python_version": "3.11",
        "migrations": False,
        "proxy_headers": True,
        "reverse_proxy": "nginx",
    },
]
WORKERS = 2
ROUTE = "/items/{item_id}"
MISSING_ITEM = 987654321
SERVER_SPAN = trace_pb2.Span.SpanKind.SPAN_KIND_SERVER


# An OTLP/HTTP receiver -------------------------------------------------------------------


def attribute_value(value: common_pb2.AnyValue) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


class OtlpReceiver:
    """What an OpenTelemetry collector is to the app: POST /v1/traces with protobuf
    ExportTraceServiceRequest bodies, decoded into one dict per span."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path != "/v1/traces":
                    self.send_error(404)
                    return
                receiver.receive(trace_service_pb2.ExportTraceServiceRequest.FromString(body))
                answer = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("0.0.0.0", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def receive(self, request: trace_service_pb2.ExportTraceServiceRequest) -> None:
        for resource_spans in request.resource_spans:
            resource = {a.key: attribute_value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    with self.lock:
                        self.spans.append(
                            {
                                "trace_id": span.trace_id.hex(),
                                "span_id": span.span_id.hex(),
                                "name": span.name,
                                "kind": span.kind,
                                "attributes": {
                                    a.key: attribute_value(a.value) for a in span.attributes
                                },
                                "resource": resource,
                            }
                        )

    def trace(self, trace_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [span for span in self.spans if span["trace_id"] == trace_id]

    @property
    def port(self) -> int:
        return self.server.server_address[1]


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    otlp = OtlpReceiver()
    yield otlp
    otlp.server.shutdown()


def host_address() -> str:
    """This machine's address on Docker's default bridge, which containers on any compose
    network reach (through their own network's gateway)."""
    return run(
        ["docker", "network", "inspect", "bridge", "--format", "{{(index .IPAM.Config 0).Gateway}}"]
    ).stdout.strip()


# The stacks ------------------------------------------------------------------------------


class Stack:
    def __init__(self, answers: dict[str, Any], compose: Compose) -> None:
        self.answers, self.compose = answers, compose

    @property
    def app(self) -> str:
        [container] = self.compose("ps", "--quiet", "app").split()
        return container

    @property
    def url(self) -> str:
        return f"http://{container_ip(self.app)}:8000"

    @property
    def prometheus(self) -> str:
        [container] = self.compose("ps", "--quiet", "prometheus").split()
        return f"http://{container_ip(container)}:9090"

    def query(self, promql: str) -> float | None:
        """The value of an instant query (a sum: one series or none)."""
        url = f"{self.prometheus}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
        with urllib.request.urlopen(url, timeout=5) as response:
            result = json.loads(response.read())["data"]["result"]
        assert len(result) <= 1, result
        return float(result[0]["value"][1]) if result else None

    def logs(self) -> list[dict[str, Any]]:
        result = run(["docker", "logs", self.app], check=False)
        return json_log_lines(result.stdout + result.stderr)


def stack_id(answers: dict[str, Any]) -> str:
    return answers["process_model"]


@pytest.fixture(
    scope="module",
    params=[
        pytest.param(a, id=stack_id(a), marks=pytest.mark.xdist_group(f"obs-{stack_id(a)}"))
        for a in STACKS
    ],
)
def stack(
    request: pytest.FixtureRequest,
    work_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
    receiver: OtlpReceiver,
    docker: None,
) -> Iterator[Stack]:
    answers = request.param
    project = private_copy(render(answers, work_dir), tmp_path_factory.mktemp("obs") / "project")
    # Scraped every second, and the app containers found at once: the test waits for
    # scrapes, not the 15 s and 30 s a real deployment is happy with.
    config = project / "prometheus/prometheus.yml"
    config.write_text(
        config.read_text()
        .replace("scrape_interval: 15s", "scrape_interval: 1s")
        .replace("refresh_interval: 30s", "refresh_interval: 1s")
    )
    settings = [
        f"ALLOWED_HOSTS={PUBLIC_HOST},localhost,127.0.0.1,app",
        f"WEB_CONCURRENCY={WORKERS}",
        f"OTEL_EXPORTER_OTLP_ENDPOINT=http://{host_address()}:{receiver.port}",
        # Spans leave at once instead of every 5 s.
        "OTEL_BSP_SCHEDULE_DELAY=100",
    ]
    if answers.get("database") == "postgresql":
        settings.append(f"DATABASE_PASSWORD={PASSWORD}")
    if answers.get("reverse_proxy") == "nginx":
        run(["make", "cert"], cwd=project)
    (project / ".env").write_text("\n".join(settings) + "\n")
    name = f"fdt-obs-{stack_id(answers)}-{uuid.uuid4().hex[:8]}"
    with Compose(project, name, env={"COMPOSE_PROFILES": "observability"}) as compose:
        compose("up", "--build", "--wait", "--wait-timeout", "120")
        built = Stack(answers, compose)
        wait_for_http(f"{built.url}/readyz")
        yield built


# Load ------------------------------------------------------------------------------------


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str | None]:
    """Status and X-Request-ID of a GET, errors included."""
    request = urllib.request.Request(url, headers={**LOCAL_HOST, **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
            return response.status, response.headers.get("X-Request-ID")
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("X-Request-ID")


def burst(url: str, count: int) -> list[int]:
    """`count` GETs, eight at a time; their statuses."""
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda _: get(url)[0], range(count)))


class Load:
    """GETs in a loop from four threads until stopped, tolerating a worker that dies
    under them (a reset connection)."""

    def __init__(self, url: str) -> None:
        self.url, self.stop = url, threading.Event()
        self.threads = [threading.Thread(target=self.loop) for _ in range(4)]
        for thread in self.threads:
            thread.start()

    def loop(self) -> None:
        while not self.stop.is_set():
            with contextlib.suppress(OSError, http.client.HTTPException):
                get(self.url)

    def end(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()


def item(stack: Stack) -> str:
    """An item that no store has: the same answer from every worker (without a database
    each has its own), through the route /items/{item_id} and, with one, a query."""
    return f"{stack.url}/items/{MISSING_ITEM}"


def eventually(read: Callable[[], Any], done: Callable[[Any], bool], timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.25)


def settled(stack: Stack, promql: str) -> float | None:
    """The query's value once three scrapes in a row gave the same."""
    values: list[float | None] = []
    deadline = time.monotonic() + 20
    while len(values) < 3 or len(set(values[-3:])) > 1:
        assert time.monotonic() < deadline, f"{promql} never settled: {values}"
        values.append(stack.query(promql))
        time.sleep(1.1)
    return values[-1]


def workers(container: str) -> list[int]:
    """The worker processes: the children of the process that has the most of them (the
    supervisor), not multiprocessing's resource tracker."""
    children: dict[int, list[int]] = defaultdict(list)
    for row in process_table(container):
        if row["ppid"] != 0 and "resource_tracker" not in row["cmdline"]:
            children[row["ppid"]].append(row["pid"])
    return sorted(max(children.values(), key=len)) if children else []


def metric_files(container: str) -> list[str]:
    listing = ["sh", "-c", 'ls "$PROMETHEUS_MULTIPROC_DIR"']
    return run(["docker", "exec", container, *listing]).stdout.split()


# Metrics ---------------------------------------------------------------------------------


def test_prometheus_counts_every_request_once_across_workers_and_a_killed_worker(
    stack: Stack,
) -> None:
    counted = f'sum(http_requests_total{{route="{ROUTE}", method="GET"}})'
    in_flight = "sum(http_requests_in_flight)"
    targets = f"{stack.prometheus}/api/v1/targets"
    target_health = eventually(
        lambda: [
            t["health"]
            for t in json.loads(urllib.request.urlopen(targets, timeout=5).read())["data"][
                "activeTargets"
            ]
        ],
        lambda health: health == ["up"],
    )
    assert target_health == ["up"], "Prometheus scrapes the one app container, directly"
    missing = item(stack)
    pids = eventually(lambda: workers(stack.app), lambda found: len(found) == WORKERS)
    assert len(pids) == WORKERS, process_table(stack.app)

    # Exactly N more, whichever worker answered each request and whichever answers the
    # scrape (the module's other tests may have counted some before).
    start = settled(stack, counted) or 0
    assert burst(missing, 60) == [404] * 60
    assert eventually(lambda: stack.query(counted), lambda v: v == start + 60) == start + 60
    assert settled(stack, counted) == start + 60

    # A worker that counted some of them dies under load; its supervisor starts another.
    files = metric_files(stack.app)
    counting = [pid for pid in pids if f"counter_{pid}.db" in files]
    assert counting, f"no worker wrote counts: {files}"
    victim = counting[0]
    load = Load(missing)
    try:
        time.sleep(1)
        run(["docker", "exec", stack.app, "python", "-c", f"import os; os.kill({victim}, 9)"])
        # Sampled four times a scrape, until the replacement has served for 3 s.
        samples, replaced, looked = [], pids, 0.0
        killed = time.monotonic()
        while (now := time.monotonic()) < killed + 30:
            # A scrape that the dying worker answered fails, and Prometheus then has no
            # value for a moment: absent, which is not lower.
            if (value := stack.query(counted)) is not None:
                samples.append(value)
            if now - looked > 1:
                replaced, looked = workers(stack.app), now
            back = len(replaced) == WORKERS and victim not in replaced
            if back and now - killed > 3 and len(samples) >= 4:
                break
            time.sleep(0.25)
    finally:
        load.end()
    assert victim not in replaced and len(replaced) == WORKERS, process_table(stack.app)
    assert len(samples) >= 4 and samples == sorted(samples), f"the count went down: {samples}"
    assert samples[-1] > start + 60

    # No request is left in flight, the dead worker's included.
    assert eventually(lambda: stack.query(in_flight), lambda value: value == 0) == 0
    before = settled(stack, counted)
    assert burst(missing, 40) == [404] * 40
    assert eventually(lambda: stack.query(counted), lambda v: v == before + 40) == before + 40


def test_each_replica_is_a_target_and_the_sum_covers_them_all(stack: Stack) -> None:
    """`--scale app=2`: Docker's DNS gives Prometheus both containers, each scrape of one
    sums its workers, and the query sums the containers."""
    if stack.answers.get("database") != "postgresql":
        pytest.skip("replicas share a database with PostgreSQL")
    counted = f'sum(http_requests_total{{route="{ROUTE}", method="GET"}})'
    targets = f"{stack.prometheus}/api/v1/targets"

    def health() -> list[str]:
        with urllib.request.urlopen(targets, timeout=5) as response:
            active = json.loads(response.read())["data"]["activeTargets"]
        return sorted(target["health"] for target in active)

    scale = ["up", "--wait", "--wait-timeout", "120", "--no-recreate", "--scale"]
    stack.compose(*scale, "app=2")
    try:
        urls = stack.compose.app_urls()
        assert len(urls) == 2
        assert eventually(health, lambda found: found == ["up", "up"]) == ["up", "up"]
        start = settled(stack, counted) or 0
        for url in urls:
            assert burst(f"{url}/items/{MISSING_ITEM}", 30) == [404] * 30
        assert eventually(lambda: stack.query(counted), lambda v: v == start + 60) == start + 60
    finally:
        stack.compose(*scale, "app=1")


def test_the_app_serves_its_metrics_to_prometheus_on_its_own_port(stack: Stack) -> None:
    assert get(item(stack))[0] == 404
    with urllib.request.urlopen(f"{stack.url}/metrics", timeout=5) as response:
        exposition = response.read().decode()
    assert response.headers["Content-Type"].startswith("text/plain")
    assert re.search(r'^http_requests_total\{.*route="/items/\{item_id\}"', exposition, re.M)
    assert 'route="/metrics"' not in exposition, "scrapes are not requests of the app"


# Request ids -----------------------------------------------------------------------------


def https_get(
    stack: Stack, path: str, headers: dict[str, str] | None = None
) -> tuple[int, list[str], bytes]:
    """Through nginx: status, the X-Request-ID headers, body."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    [proxy] = stack.compose("ps", "--quiet", "proxy").split()
    connection = http.client.HTTPSConnection(container_ip(proxy), 443, context=context, timeout=10)
    connection.request("GET", path, headers={"Host": PUBLIC_HOST, **(headers or {})})
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response.status, response.headers.get_all("X-Request-ID") or [], body


def access_lines(stack: Stack, request_id: str) -> list[dict[str, Any]]:
    return [
        line
        for line in stack.logs()
        if line.get("request_id") == request_id and line["logger"].endswith(".access")
    ]


def test_nginx_never_serves_metrics_and_gives_the_app_the_request_id_it_returns(
    stack: Stack,
) -> None:
    if stack.answers.get("reverse_proxy") != "nginx":
        pytest.skip("no nginx in this stack")
    for path in ("/metrics", "/metrics/", "//metrics", "/%6detrics", "/metrics?format=text"):
        status, _, body = https_get(stack, path)
        assert status == 404 and b"http_requests_total" not in body, path

    _, ids, _ = https_get(stack, "/healthz")
    assert len(ids) == 1 and re.fullmatch(r"[0-9a-f]{32}", ids[0]), ids
    [line] = eventually(lambda: access_lines(stack, ids[0]), bool, timeout=5)
    assert (line["route"], line["status"]) == ("/healthz", 200)

    # A caller's own id is kept when it looks like one, replaced when it does not.
    chosen = f"caller-{uuid.uuid4().hex[:12]}"
    assert https_get(stack, "/healthz", {"X-Request-ID": chosen})[1] == [chosen]
    assert eventually(lambda: access_lines(stack, chosen), bool, timeout=5)
    for junk in ("two words", "x" * 200, 'quote"s'):
        _, replaced, _ = https_get(stack, "/healthz", {"X-Request-ID": junk})
        assert len(replaced) == 1 and re.fullmatch(r"[0-9a-f]{32}", replaced[0]), junk


# Tracing ---------------------------------------------------------------------------------


def test_each_request_is_a_span_with_its_route_and_status_whose_trace_id_the_log_has(
    stack: Stack, receiver: OtlpReceiver
) -> None:
    missing = item(stack)
    request_ids = []
    for _ in range(3):
        status, request_id = get(missing)
        assert status == 404 and request_id
        request_ids.append(request_id)
    for request_id in request_ids:
        [line] = eventually(lambda rid=request_id: access_lines(stack, rid), bool, timeout=5)
        trace_id = line.get("trace_id", "")
        assert re.fullmatch(r"[0-9a-f]{32}", trace_id), line
        spans = eventually(
            lambda tid=trace_id: receiver.trace(tid),
            lambda found: any(s["kind"] == SERVER_SPAN for s in found),
            timeout=15,
        )
        [server] = [s for s in spans if s["kind"] == SERVER_SPAN]
        attributes = server["attributes"]
        assert attributes["http.route"] == ROUTE, attributes
        status_code = attributes.get(
            "http.response.status_code", attributes.get("http.status_code")
        )
        assert status_code == 404, attributes
        assert server["resource"]["service.name"] == "my-service"
        if stack.answers["migrations"]:
            database = [s for s in spans if "db.system" in s["attributes"]]
            assert database, f"no database span in the trace: {[s['name'] for s in spans]}"
            assert {s["attributes"]["db.system"] for s in database} == {stack.answers["database"]}


# Logs ------------------------------------------------------------------------------------


def test_every_line_is_json_and_a_request_id_is_in_its_access_line(stack: Stack) -> None:
    """The server's startup lines, the app's and the access lines, as each process model
    writes them; the shutdown lines are checked as the stack stops (tests/template.py)."""
    marker = uuid.uuid4().hex
    status, request_id = get(f"{stack.url}/items/{marker}")
    assert status in (404, 422) and request_id
    result = run(["docker", "logs", stack.app], check=False)
    lines = json_log_lines(result.stdout + result.stderr)  # fails on any other line
    for line in lines:
        assert {"time", "level", "logger", "message"} <= line.keys(), line
    [access] = eventually(lambda: access_lines(stack, request_id), bool, timeout=5)
    assert access["path"] == f"/items/{marker}" and access["status"] == status
    assert access["method"] == "GET" and isinstance(access["duration_ms"], int | float)
    servers = {line["logger"] for line in lines} - {access["logger"]}
    assert servers, "the server's own lines (startup) are JSON too"


# Static: what the answers generate -------------------------------------------------------


def test_prometheus_configurations_are_valid_and_scrape_the_app_on_its_port(
    work_dir: Path, docker: None
) -> None:
    answers = {"orchestrator": "swarm", "migrations": False, "port": 8080}
    project = render(answers, work_dir)
    for config in ("prometheus/prometheus.yml", "deploy/swarm/prometheus.yml"):
        # As each Prometheus sees them: the scrape configuration next to the alerts.
        mounts = ["--volume", f"{project / config}:/config/prometheus.yml:ro"]
        mounts += ["--volume", f"{project}/prometheus/alerts.yml:/config/alerts.yml:ro"]
        checked = run(
            [
                "docker",
                "run",
                "--rm",
                *mounts,
                "--entrypoint",
                "promtool",
                "prom/prometheus:v3",
                "check",
                "config",
                "/config/prometheus.yml",
            ]
        )
        assert "SUCCESS" in checked.stdout + checked.stderr
        [job] = yaml.safe_load((project / config).read_text())["scrape_configs"]
        [discovery] = job["dns_sd_configs"]
        assert (job["metrics_path"], discovery["port"]) == ("/metrics", 8080)
    compose = yaml.safe_load((project / "compose.yaml").read_text())["services"]
    assert compose["prometheus"]["profiles"] == ["observability"]
    assert compose["prometheus"]["ports"] == ["127.0.0.1:${PROMETHEUS_PORT:-9090}:9090"]


def test_swarm_prometheus_joins_the_replicas_on_their_own_network(work_dir: Path) -> None:
    answers = {"orchestrator": "swarm", "migrations": True, "database": "postgresql"}
    answers |= {"proxy_headers": True, "reverse_proxy": "nginx"}
    project = render(answers, work_dir)
    merged = run(
        [
            "docker",
            "stack",
            "config",
            "--compose-file",
            "deploy/swarm/stack.yaml",
            "--compose-file",
            "deploy/swarm/observability.yaml",
        ],
        cwd=project,
        env={"APP_IMAGE": "registry.example.test/app:build-1", "STACK_NAME": "demo"},
    )
    services = yaml.safe_load(merged.stdout)["services"]
    assert set(services["app"]["networks"]) == {"edge", "backend", "metrics"}
    assert set(services["prometheus"]["networks"]) == {"metrics"}, "not trusted, no database"
    [job] = yaml.safe_load((project / "deploy/swarm/prometheus.yml").read_text())["scrape_configs"]
    assert job["dns_sd_configs"][0]["names"] == ["tasks.app"]
    script = (project / "deploy/swarm/stack.sh").read_text()
    assert "deploy/swarm/observability.yaml" in script


def test_kubernetes_pods_are_annotated_for_scraping_and_prometheus_may_reach_them(
    work_dir: Path,
) -> None:
    answers = {"orchestrator": "kubernetes", "migrations": False, "port": 8080}
    project = render(answers, work_dir)
    manifests = run(["kubectl", "kustomize", "deploy/kubernetes/overlays/prod"], cwd=project)
    objs = {d["kind"]: d for d in yaml.safe_load_all(manifests.stdout) if d}
    pod = objs["Deployment"]["spec"]["template"]
    assert pod["metadata"]["annotations"] == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "8080",
        "prometheus.io/path": "/metrics",
    }
    assert pod["spec"]["containers"][0]["ports"] == [{"name": "http", "containerPort": 8080}]
    rules = objs["NetworkPolicy"]["spec"]["ingress"]
    [scrape] = [r for r in rules if "monitoring" in json.dumps(r["from"])]
    assert scrape["ports"] == [{"port": "http"}]


# What metrics: yes puts in a project, each where it would be found.
METRICS_TRACES = {
    "prometheus-client": "the dependency, in pyproject.toml and the lock",
    "prometheus_client": "its import",
    "/metrics": "the route, nginx's refusal, the scrape path",
    "PROMETHEUS_": "the multiprocess directory, compose's and Swarm's settings",
    "prometheus.io/": "Kubernetes's scrape annotations",
    "prom/prometheus": "the compose and Swarm service",
}


def generated_text(project: Path) -> str:
    """Code, configuration, scripts and locks; not the README, which may say what a
    question would have added."""
    kinds = {".py", ".yaml", ".yml", ".toml", ".sh", ".template", ".example", ".lock", ""}
    files = [p for p in project.rglob("*") if p.is_file() and p.suffix in kinds]
    return "\n".join(path.read_text() for path in files)


@pytest.mark.parametrize("orchestrator", ["kubernetes", "swarm"])
def test_metrics_no_leaves_no_dependency_route_or_configuration(
    work_dir: Path, orchestrator: str
) -> None:
    answers = {"orchestrator": orchestrator, "process_model": "gunicorn", "migrations": False}
    answers |= {"proxy_headers": True, "reverse_proxy": "nginx"}
    with_metrics = generated_text(render({**answers, "metrics": True}, work_dir))
    project = render({**answers, "metrics": False}, work_dir)
    without = generated_text(project)
    for trace, where in METRICS_TRACES.items():
        if trace in with_metrics:  # the search finds what is there
            assert trace not in without, f"{trace} ({where}) is left with metrics: no"
        else:
            assert (trace, orchestrator) == ("prometheus.io/", "swarm"), f"no {trace} ({where})"
    assert not (project / "prometheus").exists()
    assert not (project / "deploy/swarm/observability.yaml").exists()
