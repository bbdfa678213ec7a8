"""Shared helpers for the template's tests: the questionnaire, rendering, and Docker.

The matrix is read from copier.yml, so a new choice is covered without touching the tests.
"""

import hashlib
import itertools
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import copier
import yaml

ROOT = Path(__file__).resolve().parents[1]
COPIER_YML: dict[str, Any] = yaml.safe_load((ROOT / "copier.yml").read_text())


def asked_questions(config: dict[str, Any]) -> dict[str, Any]:
    """A copier.yml's questions: not its settings (`_...`), not its computed values
    (`when: false`), which the answers file does not record."""
    return {
        name: spec
        for name, spec in config.items()
        if not name.startswith("_") and not (isinstance(spec, dict) and spec.get("when") is False)
    }


QUESTIONS = asked_questions(COPIER_YML)
# The axes whose every pair of values the render matrix covers (all of their combinations).
MAIN_AXES = (
    "dependency_tool",
    "base_variant",
    "process_model",
    "proxy_headers",
    "database",
    "migration_step",
)
# Combinations the questionnaire rejects, with the message it gives (see test_answers.py).
IMPOSSIBLE = {
    ("process_model", "official-image", "base_variant", "alpine"): "no maintained alpine variant",
}
# Answers the remaining questions cycle through, so every value appears in the matrix.
ROTATING = {
    "python_version": None,  # its choices
    "debian_release": None,
    "workers": ["auto", "2"],
    "port": [8000, 8080],
    "package_name": ["app", "service"],
    "reverse_proxy": None,
    "orchestrator": None,
    # Four long, against orchestrator's three, so each provider meets each orchestrator.
    "ci": ["github", "gitlab", "none", "github"],
    # Three long, so each metrics answer meets both worker answers; four long, so the
    # two observability questions meet in all four ways.
    "metrics": [True, True, False],
    "tracing": [True, True, False, True],
    "forwarded_allow_ips": ["127.0.0.1", "10.0.0.0/8, 192.168.1.5", "*"],
}


def choices(question: str) -> list[Any]:
    spec = QUESTIONS[question]
    if spec["type"] == "bool":
        return [True, False]
    return [
        value["value"] if isinstance(value, dict) else value for value in spec["choices"].values()
    ]


def database_answers(database: str) -> dict[str, Any]:
    return (
        {"migrations": False} if database == "none" else {"migrations": True, "database": database}
    )


def applicable(answers: dict[str, Any]) -> dict[str, Any]:
    """Drop answers to questions that these answers do not ask (Copier ignores them)."""
    result = dict(answers)
    if result["process_model"] == "uvicorn":
        result.pop("workers", None)
    if result["base_variant"] == "alpine" or result["process_model"] == "official-image":
        result.pop("debian_release", None)
    if result["process_model"] == "official-image":
        result["python_version"] = "3.11"
    if not result.get("proxy_headers", True):
        result.pop("reverse_proxy", None)
        result.pop("forwarded_allow_ips", None)
    if result.get("reverse_proxy") == "nginx":
        result.pop("forwarded_allow_ips", None)  # nginx's pinned address, by default
    if not result["migrations"]:
        result.pop("migration_step", None)
    if result.get("orchestrator") == "swarm" and result.get("database") == "sqlite":
        result["orchestrator"] = "none"  # Swarm's replicas need a shared database (copier.yml)
    return result


def matrix() -> list[dict[str, Any]]:
    """Every combination of the main axes that the questionnaire allows."""
    axes = {axis: choices(axis) for axis in MAIN_AXES if axis != "database"}
    axes["database"] = ["none", *choices("database")]
    combinations = []
    for values in itertools.product(*axes.values()):
        answers = dict(zip(axes, values, strict=True))
        if (
            answers["database"] == "none"
            and answers["migration_step"] != choices("migration_step")[0]
        ):
            continue  # migration_step is not asked without a database
        if any(answers.get(q1) == v1 and answers.get(q2) == v2 for q1, v1, q2, v2 in IMPOSSIBLE):
            continue
        combinations.append(answers)
    for index, answers in enumerate(combinations):
        for question, values in ROTATING.items():
            values = values or choices(question)
            answers[question] = values[index % len(values)]
        answers.update(database_answers(answers.pop("database")))
    return [applicable(answers) for answers in combinations]


def answers_id(answers: dict[str, Any]) -> str:
    keys = ("dependency_tool", "base_variant", "process_model", "python_version")
    database = answers.get("database", "nodb") if answers["migrations"] else "nodb"
    return "-".join(
        [
            *(str(answers[k]) for k in keys),
            database,
            answers.get("migration_step", ""),
            "noproxy" if not answers["proxy_headers"] else f"proxy-{answers['reverse_proxy']}",
        ]
    ).strip("-")


def template_snapshot(directory: Path) -> Path:
    """The working tree as a plain directory: Copier then renders it as it is, uncommitted
    changes included, without cloning. Made once per run, safely from parallel processes."""
    snapshot = directory / "template-snapshot"
    if not snapshot.exists():
        scratch = Path(tempfile.mkdtemp(dir=directory)) / "template"
        ignore = shutil.ignore_patterns(
            ".git",
            ".venv",
            ".cache",
            "__pycache__",
            ".pytest_cache",
            "site",
            "bench",
            "node_modules",
        )
        shutil.copytree(ROOT, scratch, ignore=ignore)
        try:
            scratch.rename(snapshot)
        except OSError:  # another process made it first
            shutil.rmtree(scratch)
    return snapshot


def render(answers: dict[str, Any], directory: Path) -> Path:
    """Render once per answer set into `directory` (shared between test processes)."""
    key = hashlib.sha256(json.dumps(answers, sort_keys=True).encode()).hexdigest()[:16]
    project = directory / "renders" / key
    if not project.exists():
        project.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(dir=project.parent))
        copier.run_copy(
            str(template_snapshot(directory)),
            scratch,
            data=answers,
            defaults=True,
            quiet=True,
            unsafe=False,
        )
        try:
            scratch.rename(project)
        except OSError:  # another process finished the same render first
            shutil.rmtree(scratch)
    return project


def private_copy(project: Path, destination: Path) -> Path:
    """A copy of a shared render that a test may change (or install into)."""
    shutil.copytree(project, destination, symlinks=True)
    return destination


def run(
    command: list[str],
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 900,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run a command; on failure, the assertion shows its output."""
    result = subprocess.run(
        command,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        text=True,
        capture_output=True,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(command)} exited {result.returncode}\n"
            f"--- stdout\n{result.stdout[-6000:]}\n--- stderr\n{result.stderr[-6000:]}"
        )
    return result


def head_revision(project: Path) -> str:
    """The newest migration of a generated project: the revision no other one follows."""
    revisions, followed = set(), set()
    for script in (project / "migrations" / "versions").glob("*.py"):
        text = script.read_text()
        revisions.update(re.findall(r'^revision(?:: str)? = "(\w+)"', text, re.M))
        followed.update(re.findall(r'^down_revision(?:: [^=]+)? = "(\w+)"', text, re.M))
    (head,) = revisions - followed
    return head


def alembic_versions_command(user: str = "app", database: str = "app") -> list[str]:
    """psql, run in the database's container, printing the revisions the schema is at."""
    return [
        "psql",
        f"--username={user}",
        f"--dbname={database}",
        "--tuples-only",
        "--no-align",
        "--command",
        "SELECT version_num FROM alembic_version",
    ]


def readme_commands(project: Path) -> list[str]:
    """The shell commands in the generated README's ```sh blocks, without their comments."""
    commands, in_shell_block = [], False
    for line in (project / "README.md").read_text().splitlines():
        if line.startswith("```"):
            in_shell_block = line == "```sh"
        elif in_shell_block and line.strip():
            commands.append(line.split(" #")[0].strip())
    return commands


# Docker ---------------------------------------------------------------------------------


def docker_available() -> bool:
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def image_exists(image: str) -> bool:
    return (
        subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode == 0
    )


def build(project: Path, tag: str, target: str | None = None, no_cache: bool = False) -> str:
    """Build an image and return BuildKit's log. A `target` stage is always run anew, so
    its RUN steps (the tests) really run; `no_cache` reuses no layer at all."""
    command = ["docker", "build", "--progress=plain", "--tag", tag]
    if target:
        command += ["--target", target, "--no-cache-filter", target]
    if no_cache:
        command.append("--no-cache")
    result = run([*command, "."], cwd=project, env={"DOCKER_BUILDKIT": "1"})
    return result.stdout + result.stderr


def base_image(project: Path) -> str:
    """The image a generated Dockerfile builds on (its BASE_IMAGE default)."""
    match = re.search(r"^ARG BASE_IMAGE=(\S+)$", (project / "Dockerfile").read_text(), re.M)
    if not match:
        raise ValueError(f"no BASE_IMAGE in {project / 'Dockerfile'}")
    return match.group(1)


def image_size(image: str) -> int:
    return int(run(["docker", "image", "inspect", "--format", "{{.Size}}", image]).stdout)


# How compose runs the app: read-only, without capabilities or new privileges.
HARDENED_RUN_ARGS = [
    "--read-only",
    "--tmpfs",
    "/tmp",
    "--cap-drop",
    "ALL",
    "--security-opt",
    "no-new-privileges",
]


def container_ip(container: str) -> str:
    return run(
        [
            "docker",
            "inspect",
            "--format",
            "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
            container,
        ]
    ).stdout.strip()


# Tests reach containers by their address; the app answers only to the host names in its
# ALLOWED_HOSTS, and `localhost` is one of them by default.
LOCAL_HOST = {"Host": "localhost"}


def wait_for_http(url: str, timeout: float = 30) -> float:
    """Poll until the URL answers 200; return the seconds it took."""
    start = time.monotonic()
    while True:
        try:
            request = urllib.request.Request(url, headers=LOCAL_HOST)
            with urllib.request.urlopen(request, timeout=2) as response:
                if response.status == 200:
                    return time.monotonic() - start
        except OSError:
            pass
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{url} did not answer 200 within {timeout} s")
        time.sleep(0.1)


def wait_for_health(container: str, timeout: float = 60) -> str:
    """Wait until Docker's HEALTHCHECK settles; return the final status."""
    deadline = time.monotonic() + timeout
    while True:
        status = run(
            ["docker", "inspect", "--format", "{{.State.Health.Status}}", container]
        ).stdout.strip()
        if status != "starting" or time.monotonic() > deadline:
            return status
        time.sleep(0.5)


def json_log_lines(logs: str) -> list[dict[str, Any]]:
    """An app container's log, one JSON object a line; any other line fails the test."""
    parsed, other = [], []
    for line in logs.splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            value = None
        if isinstance(value, dict):
            parsed.append(value)
        else:
            other.append(line)
    if other:
        shown = "\n".join(other[:20])
        raise AssertionError(
            f"{len(other)} of {len(logs.splitlines())} lines are not JSON:\n{shown}"
        )
    return parsed


def writes_json_logs(container: str) -> bool:
    """Whether a container runs a generated image (PostgreSQL's, nginx's or a registry's
    do not) that was not asked for LOG_FORMAT=console; always false outside pytest."""
    if "PYTEST_CURRENT_TEST" not in os.environ:
        return False
    result = run(["docker", "inspect", "--format", "{{json .Config}}", container], check=False)
    if result.returncode != 0:
        return False
    config = json.loads(result.stdout)
    labels, env = config.get("Labels") or {}, config.get("Env") or []
    return "org.opencontainers.image.title" in labels and "LOG_FORMAT=console" not in env


def check_app_logs(container: str) -> None:
    """Every line that an app container wrote (startup, requests, errors, shutdown) is JSON."""
    logs = run(["docker", "logs", container], check=False)
    try:
        json_log_lines(logs.stdout + logs.stderr)
    except AssertionError as error:
        raise AssertionError(f"container {container[:12]}: {error}") from None


class Container:
    """`docker run -d` that always cleans up after itself. When the block raised nothing,
    an app container is stopped first and its lines must all be JSON (check_app_logs)."""

    def __init__(self, image: str, *args: str) -> None:
        self.id = run(["docker", "run", "--detach", *args, image]).stdout.strip()

    def __enter__(self) -> "Container":
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        try:
            if exc_type is None and writes_json_logs(self.id):
                # Stopped as Docker stops it, so that its shutdown lines are checked too.
                subprocess.run(["docker", "stop", "--time", "10", self.id], capture_output=True)
                check_app_logs(self.id)
        finally:
            subprocess.run(["docker", "rm", "--force", "--volumes", self.id], capture_output=True)

    @property
    def ip(self) -> str:
        return container_ip(self.id)

    def logs(self) -> str:
        result = run(["docker", "logs", self.id], check=False)
        return result.stdout + result.stderr

    def exec(self, *command: str) -> str:
        return run(["docker", "exec", self.id, *command]).stdout


PROCESS_PROBE = """
import json, os
rows = []
for pid in filter(str.isdigit, os.listdir('/proc')):
    try:
        cmdline = open(f'/proc/{pid}/cmdline').read().replace('\\0', ' ').strip()
        status = dict(line.split(':', 1) for line in open(f'/proc/{pid}/status'))
        try:
            rollup = dict(line.split(':', 1) for line in open(f'/proc/{pid}/smaps_rollup') if ':' in line and not line[0].isdigit())
            pss = int(rollup['Pss'].split()[0])
        except (OSError, KeyError):
            pss = None
    except OSError:
        continue
    if cmdline and 'PROCESS_PROBE' not in cmdline:
        rows.append({'pid': int(pid), 'ppid': int(status['PPid']), 'cmdline': cmdline,
                     'rss_kb': int(status.get('VmRSS', '0').split()[0]), 'pss_kb': pss})
print(json.dumps(rows))
# PROCESS_PROBE
"""


def process_table(container: str) -> list[dict[str, Any]]:
    """The container's processes (not counting this probe): pid, ppid, command line, and
    resident memory in kB (RSS, and PSS where the kernel reports it)."""
    return json.loads(run(["docker", "exec", container, "python", "-c", PROCESS_PROBE]).stdout)


def processes(container: str) -> list[str]:
    """The command lines of the container's processes."""
    return [row["cmdline"] for row in process_table(container)]


# Run with `python -c HOST PORT PATH`: a GET that claims, in forwarded headers, to come
# from 198.51.100.66 over https. Prints this end's address, the status and the Location.
SPOOFED_REQUEST = (
    "import http.client, sys\n"
    "host, port, path = sys.argv[1:]\n"
    "c = http.client.HTTPConnection(host, int(port), timeout=10)\n"
    "c.request('GET', path, headers={'Host': 'api.example.test',"
    " 'X-Forwarded-For': '198.51.100.66', 'X-Forwarded-Proto': 'https'})\n"
    "r = c.getresponse()\n"
    "print(c.sock.getsockname()[0], r.status, r.getheader('Location'))\n"
)


class Compose:
    """A generated project's compose stack under a unique project name, torn down with its
    volumes afterwards. Host ports are not published (tests reach containers by address),
    so stacks run side by side and scale."""

    def __init__(self, project: Path, name: str, env: dict[str, str] | None = None) -> None:
        # Each stack builds its own image: stacks of other answers run in parallel.
        self.project, self.name, self.env = project, name, {"IMAGE": f"{name}-image", **(env or {})}
        services = yaml.safe_load((project / "compose.yaml").read_text())["services"]
        published = [s for s in ("app", "proxy", "prometheus") if s in services]
        if "proxy" in services:
            self.env.update(proxy_network())
        override = project / "compose.test.yaml"
        override.write_text(
            "services:\n" + "".join(f"  {s}:\n    ports: !reset []\n" for s in published)
        )
        self.base = [
            "docker",
            "compose",
            "--project-name",
            name,
            "--file",
            "compose.yaml",
            "--file",
            override.name,
        ]

    def __call__(self, *args: str, check: bool = True, timeout: float = 600) -> str:
        result = run(
            [*self.base, *args], cwd=self.project, env=self.env, check=check, timeout=timeout
        )
        return result.stdout + result.stderr

    def __enter__(self) -> "Compose":
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        try:
            if exc_type is None:
                # The app containers' logs, shutdown included, are all JSON (check_app_logs).
                self("stop", "--timeout", "10", check=False)
                for container in self("ps", "--all", "--quiet", "app", check=False).split():
                    if writes_json_logs(container):
                        check_app_logs(container)
        finally:
            self("down", "--volumes", "--remove-orphans", "--timeout", "5", check=False)

    def app_urls(self, port: int = 8000) -> list[str]:
        ids = self("ps", "--quiet", "app").split()
        return [f"http://{container_ip(i)}:{port}" for i in ids]

    def network(self) -> str:
        return f"{self.name}_default"


def proxy_network() -> dict[str, str]:
    """A pinned network for a stack with nginx, outside Docker's default address pools and
    distinct per test process (each process runs one stack at a time)."""
    pid = os.getpid()
    prefix = f"10.{200 + pid // 256 % 50}.{pid % 256}"
    return {"NETWORK_SUBNET": f"{prefix}.0/24", "PROXY_ADDRESS": f"{prefix}.10"}
