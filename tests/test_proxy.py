"""nginx in front of the app, for every process model: requests over HTTPS are seen by the
app as HTTPS with the client's host and real address, and forwarded headers are believed
from nginx alone, never from a client or from another container on the network."""

import http.client
import os
import re
import ssl
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import yaml

from template import (
    SPOOFED_REQUEST,
    Compose,
    container_ip,
    json_log_lines,
    private_copy,
    render,
    run,
)

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("docker")]

# One stack per process model; the build stages match test_docker.py's covering set where
# they can, so their dependency layers come from the build cache.
STACKS: list[dict[str, Any]] = [
    {"dependency_tool": "uv", "process_model": "uvicorn", "python_version": "3.13"},
    {
        "dependency_tool": "pip",
        "process_model": "uvicorn-workers",
        "workers": "2",
        "base_variant": "slim",
        "debian_release": "bookworm",
        "python_version": "3.14",
    },
    {
        "dependency_tool": "uv",
        "process_model": "gunicorn",
        "workers": "2",
        "python_version": "3.13",
    },
    {
        "dependency_tool": "uv",
        "process_model": "official-image",
        "workers": "2",
        "base_variant": "full",
        "python_version": "3.11",
    },
]
PUBLIC_HOST = "api.example.test"
SPOOFED = {"X-Forwarded-For": "198.51.100.66", "X-Forwarded-Proto": "http"}


@pytest.fixture(
    scope="module",
    params=[
        pytest.param(
            a, id=a["process_model"], marks=pytest.mark.xdist_group(f"proxy-{a['process_model']}")
        )
        for a in STACKS
    ],
)
def stack(
    request: pytest.FixtureRequest, work_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Any:
    answers = {
        "migrations": False,
        "proxy_headers": True,
        "reverse_proxy": "nginx",
        **request.param,
    }
    project = private_copy(render(answers, work_dir), tmp_path_factory.mktemp("proxy") / "project")
    run(["make", "cert"], cwd=project)  # the README's command for a local certificate
    # As the README says for a server: its public name in ALLOWED_HOSTS, in .env.
    (project / ".env").write_text(f"ALLOWED_HOSTS={PUBLIC_HOST},localhost,127.0.0.1,app\n")
    name = f"fdt-proxy-{answers['process_model']}-{uuid.uuid4().hex[:8]}"
    with Compose(project, name) as compose:
        compose("up", "--build", "--wait", "--wait-timeout", "120")
        yield compose


def address(compose: Compose, service: str) -> str:
    return container_ip(compose("ps", "--quiet", service).split()[0])


class Reply(NamedTuple):
    status: int
    location: str | None
    certificate: bytes | None
    client_address: str  # this end of the connection, as nginx sees it
    headers: http.client.HTTPMessage


def https_request(
    compose: Compose,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    body: str | None = None,
) -> Reply:
    # The certificate is `make cert`'s self-signed one for localhost; a test checks that
    # nginx serves exactly it, instead of verifying it against a CA.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    connection = http.client.HTTPSConnection(
        address(compose, "proxy"), 443, context=context, timeout=10
    )
    all_headers = {"Host": PUBLIC_HOST, "Content-Type": "application/json", **(headers or {})}
    connection.request(method, path, body=body, headers=all_headers)
    response = connection.getresponse()
    response.read()
    certificate = connection.sock.getpeercert(binary_form=True)
    client_address = connection.sock.getsockname()[0]
    connection.close()
    return Reply(
        response.status, response.getheader("Location"), certificate, client_address, response.msg
    )


def access_log_clients(compose: Compose, marker: str) -> list[str]:
    """The client addresses the app logged for requests whose path contains `marker`
    (its JSON access lines leave the query string out)."""
    [app] = compose("ps", "--quiet", "app").split()
    logs = run(["docker", "logs", app], check=False)
    lines = json_log_lines(logs.stdout + logs.stderr)
    return [
        line["client"]
        for line in lines
        if line["logger"].endswith(".access") and marker in line["path"]
    ]


def test_nginx_serves_the_project_certificate_over_https(stack: Compose) -> None:
    response = https_request(stack, "GET", "/healthz")

    certificate = (stack.project / "nginx/certs/tls.crt").read_text()
    assert response.status == 200
    assert response.certificate == ssl.PEM_cert_to_DER_cert(certificate)


def test_app_sees_https_and_the_public_host_through_nginx(stack: Compose) -> None:
    redirect = https_request(stack, "GET", "/items", headers=SPOOFED)
    created = https_request(stack, "POST", "/items/", body='{"name": "Widget"}', headers=SPOOFED)

    # The client's own X-Forwarded-Proto: http is replaced by what nginx saw: https.
    assert redirect.status == 307
    assert redirect.location == f"https://{PUBLIC_HOST}/items/"
    assert created.status == 201
    assert re.fullmatch(rf"https://{PUBLIC_HOST}/items/\d+", created.location or "")


def http_get(host: str, path: str) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection(host, 80, timeout=10)
    connection.request("GET", path, headers={"Host": PUBLIC_HOST})
    response = connection.getresponse()
    response.body = response.read()  # type: ignore[attr-defined]
    connection.close()
    return response


def test_plain_http_redirects_to_https(stack: Compose) -> None:
    response = http_get(address(stack, "proxy"), "/items?page=2")

    assert response.status == 308
    assert response.getheader("Location") == f"https://{PUBLIC_HOST}/items?page=2"
    assert response.getheader("Strict-Transport-Security") is None


def test_https_answers_carry_hsts_and_no_nginx_version(stack: Compose) -> None:
    response = https_request(stack, "GET", "/healthz")

    assert response.headers["Strict-Transport-Security"] == "max-age=31536000"
    assert response.headers["Server"] == "nginx"


def test_acme_challenges_are_served_over_plain_http(stack: Compose) -> None:
    token = uuid.uuid4().hex
    challenges = stack.project / "nginx/acme/.well-known/acme-challenge"
    challenges.mkdir(parents=True, exist_ok=True)
    (challenges / token).write_text(f"{token}.key-authorization")

    response = http_get(address(stack, "proxy"), f"/.well-known/acme-challenge/{token}")

    assert response.status == 200
    assert response.body == f"{token}.key-authorization".encode()  # type: ignore[attr-defined]


def test_app_logs_the_real_client_address_not_one_the_client_claims(stack: Compose) -> None:
    marker = uuid.uuid4().hex
    reply = https_request(stack, "GET", f"/items/{marker}", headers=SPOOFED)

    assert access_log_clients(stack, marker) == [reply.client_address]


def test_forwarded_headers_sent_straight_to_the_app_are_not_believed(stack: Compose) -> None:
    """Another container on the same network, bypassing nginx, claims to be a proxied client."""
    marker = uuid.uuid4().hex
    client = ["docker", "run", "--rm", "--network", stack.network(), "--entrypoint", "python"]
    request = [stack.env["IMAGE"], "-c", SPOOFED_REQUEST, "app", "8000", f"/items/{marker}/"]
    output = run([*client, *request]).stdout.split()

    peer, status, location = output
    assert (status, location) == ("307", f"http://{PUBLIC_HOST}/items/{marker}")
    assert access_log_clients(stack, marker) == [peer]


def test_a_stopped_app_gives_a_fast_502_and_nginx_recovers_when_it_returns(
    stack: Compose,
) -> None:
    """Last in the module: it stops the app, and starts it again."""
    stack("stop", "app")
    try:
        answers = []
        for _ in range(5):
            started = time.monotonic()
            status = https_request(stack, "GET", "/healthz").status
            answers.append((status, round(time.monotonic() - started, 1)))
            time.sleep(0.5)
    finally:
        stack("start", "app")
        stack("up", "--wait", "--wait-timeout", "60")
    # Fast answers, not 5 s waits: the first request may still try the gone address for
    # the 1 s connect timeout (a 504); after that nginx answers 502 at once.
    assert all(status in (502, 504) and seconds < 4 for status, seconds in answers), answers
    assert all(status == 502 for status, _ in answers[1:]), answers
    deadline = time.monotonic() + 10
    while (status := https_request(stack, "GET", "/healthz").status) != 200:
        assert time.monotonic() < deadline, f"nginx still answers {status}"
        time.sleep(0.5)


def nginx_alone(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """nginx as compose runs it (same mounts, capabilities and read-only root), without the
    stack: it starts, renders its template and serves port 80, or says why not."""
    compose = yaml.safe_load((project / "compose.yaml").read_text())["services"]["proxy"]
    command = ["docker", "run", "--detach", "--read-only", "--cap-drop", "ALL"]
    command += [f"--cap-add={cap}" for cap in compose["cap_add"]]
    command += [f"--tmpfs={path}" for path in compose["tmpfs"]]
    command += ["--security-opt", "no-new-privileges", "--env", "HTTPS_PORT=443"]
    command += ["--env", f"APP_UPSTREAM={compose['environment']['APP_UPSTREAM']}"]
    command += [
        f"--volume={project}/nginx/default.conf.template:/etc/nginx/templates/default.conf.template:ro",
        f"--volume={project}/nginx/certs:/etc/nginx/certs:ro",
        f"--volume={project}/nginx/acme:/var/www/acme:ro",
    ]
    return run([*command, *args, compose["image"]], check=False)


def test_nginx_starts_without_ipv6_and_reads_a_root_only_key_but_no_other(
    work_dir: Path, tmp_path: Path
) -> None:
    """The docs' rule for real keys: owned by root (UID 0), mode 0600, as nginx's master
    reads them without CAP_DAC_OVERRIDE; a key owned by anyone else is refused."""
    answers = {"migrations": False, "reverse_proxy": "nginx", "proxy_headers": True}
    project = private_copy(render(answers, work_dir), tmp_path / "project")
    run(["make", "cert"], cwd=project)
    key = project / "nginx/certs/tls.key"
    key.chmod(0o600)
    outcomes = {}
    for owner in (0, 10001):
        os.chown(key, owner, owner)
        started = nginx_alone(project, "--sysctl", "net.ipv6.conf.all.disable_ipv6=1")
        container = started.stdout.strip()
        try:
            time.sleep(2)
            state = run(["docker", "inspect", "--format", "{{.State.Running}}", container])
            logs = run(["docker", "logs", container], check=False)
            redirect = None
            if state.stdout.strip() == "true":
                redirect = http_get(container_ip(container), "/").status
            outcomes[owner] = (state.stdout.strip(), redirect, logs.stdout + logs.stderr)
        finally:
            run(["docker", "rm", "--force", container], check=False)
    assert outcomes[0][:2] == ("true", 308), outcomes[0]
    assert outcomes[10001][0] == "false", outcomes[10001]
    assert "Permission denied" in outcomes[10001][2], outcomes[10001]
