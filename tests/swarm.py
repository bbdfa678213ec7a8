"""Docker Swarm for tests/test_swarm.py and the benchmark (bench/swarm_update.py): swarm
mode for a while, a stack's leftovers removed, and PostgreSQL reading its password file."""

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from template import run

# The answer set deployed for real: PostgreSQL with Gunicorn workers (a database, a
# migration job, several processes per replica) and nginx in front.
DEPLOYED_ANSWERS: dict[str, Any] = {
    "dependency_tool": "uv",
    "process_model": "gunicorn",
    "workers": "2",
    "python_version": "3.13",
    "migrations": True,
    "database": "postgresql",
    "migration_step": "separate",
    "proxy_headers": True,
    "reverse_proxy": "nginx",
    "orchestrator": "swarm",
}


def docker_out(*args: str, check: bool = True) -> str:
    return run(["docker", *args], check=check, timeout=600).stdout.strip()


def settled_swarm_state(timeout: float = 60.0) -> str:
    """The node's swarm state once it leaves `pending`: a manager restored with its engine
    stays pending until it has elected itself, which takes a few seconds."""
    deadline = time.monotonic() + timeout
    while True:
        state = docker_out("info", "--format", "{{.Swarm.LocalNodeState}}")
        if state != "pending" or time.monotonic() > deadline:
            return state
        time.sleep(1)


@contextmanager
def swarm_mode() -> Iterator[None]:
    """Swarm mode: a working swarm is used as it is; one made here is left afterwards,
    unless stacks that others deployed meanwhile still run on it. A node stuck in a swarm
    it cannot serve (error, or still pending) is reset first."""
    state = settled_swarm_state()
    if state in ("error", "pending"):
        docker_out("swarm", "leave", "--force", check=False)
        state = settled_swarm_state()
    created = state == "inactive"
    if created:
        docker_out("swarm", "init", "--advertise-addr", "127.0.0.1")
    elif docker_out("info", "--format", "{{.Swarm.ControlAvailable}}") != "true":
        raise AssertionError(
            f"this engine is in a swarm ({state}) but not a manager: cannot deploy"
        )
    try:
        yield
    finally:
        if created and not docker_out("stack", "ls", "--format", "{{.Name}}", check=False):
            docker_out("swarm", "leave", "--force", check=False)


def remove_stack(stack: str) -> None:
    """The stack, and what `make stack-rm` keeps: its data volumes, secret and node labels."""
    docker_out("stack", "rm", "--detach=false", stack, check=False)
    deadline = time.monotonic() + 60
    label = f"label=com.docker.stack.namespace={stack}"
    while docker_out("ps", "--all", "--quiet", "--filter", label, check=False):
        if time.monotonic() > deadline:
            break
        time.sleep(1)
    for volume in ("db-data", "prometheus-data"):
        docker_out("volume", "rm", f"{stack}_{volume}", check=False)
    docker_out("secret", "rm", f"{stack}_database_password", check=False)
    node = docker_out("info", "--format", "{{.Swarm.NodeID}}", check=False)
    for label in ("database", "prometheus"):
        docker_out("node", "update", "--label-rm", f"{stack}.{label}", node, check=False)


def build_postgres_file_env_image(context: Path, tag: str) -> str:
    """postgres:17 reading POSTGRES_PASSWORD_FILE, built in `context` as `tag`: the public
    image does, this machine's stand-in for it does not, so this adds what the public one has."""
    context.mkdir(parents=True, exist_ok=True)
    (context / "file-env.sh").write_text(
        "#!/bin/sh\n"
        'if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then\n'
        '    POSTGRES_PASSWORD=$(cat "$POSTGRES_PASSWORD_FILE")\n'
        "    export POSTGRES_PASSWORD\n"
        "    unset POSTGRES_PASSWORD_FILE\n"
        "fi\n"
        'exec docker-entrypoint.sh "$@"\n'
    )
    (context / "file-env.sh").chmod(0o755)
    (context / "Dockerfile").write_text(
        'FROM postgres:17\nCOPY file-env.sh /usr/local/bin/\nENTRYPOINT ["file-env.sh"]\n'
        'CMD ["postgres"]\n'
    )
    docker_out("build", "--quiet", "--tag", tag, str(context))
    return tag


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
