"""Render every combination of the main answers and check each generated tree statically."""

import ast
import json
import re
import shutil
import tomllib
from pathlib import Path
from typing import Any

import copier
import pytest
import yaml

from template import ROOT, answers_id, matrix, readme_commands, render, run, template_snapshot

LOCKS = ROOT / "includes" / "locks"
# README commands that are not make targets, and the tests that run them as written.
README_COMMANDS_RUN_BY_TESTS = {
    "docker run ": "test_docker.py::test_readme_docker_run_commands_migrate_and_serve",
    "cp .env.example .env": "test_compose.py (its stacks start from this copy)",
    "copier update": "test_update.py",
    "copier check-update": "test_update.py",
}

MATRIX = matrix()


@pytest.fixture(params=MATRIX, ids=[answers_id(a) for a in MATRIX])
def rendered(request: pytest.FixtureRequest, work_dir: Path) -> tuple[dict[str, Any], Path]:
    return request.param, render(request.param, work_dir)


def files(project: Path) -> list[Path]:
    return sorted(p for p in project.rglob("*") if p.is_file())


def expected_presence(answers: dict[str, Any]) -> dict[str, bool]:
    tool, model, migrations = (
        answers["dependency_tool"],
        answers["process_model"],
        answers["migrations"],
    )
    entrypoint_step = migrations and answers["migration_step"] == "entrypoint"
    auto_workers = model in ("uvicorn-workers", "gunicorn") and answers.get("workers") == "auto"
    package = answers["package_name"]
    swarm = answers["orchestrator"] == "swarm"
    return {
        "uv.lock": tool == "uv",
        "poetry.lock": tool == "poetry",
        "poetry.toml": tool == "poetry",
        "requirements.txt": tool == "pip",
        "requirements-dev.txt": tool == "pip",
        "requirements.in": tool == "pip",
        "gunicorn.conf.py": model == "gunicorn",
        "prestart.sh": model == "official-image",
        # Uvicorn reads its keep-alive from the environment that the entrypoint sets.
        "docker-entrypoint.sh": model in ("uvicorn", "uvicorn-workers")
        or (model == "gunicorn" and (auto_workers or entrypoint_step)),
        "alembic.ini": migrations,
        "migrations/env.py": migrations,
        f"{package}/db/models.py": migrations,
        f"{package}/db/migrate.py": migrations,
        f"{package}/db/wait_for_head.py": migrations,
        "migrations/versions/0002_never_reuse_item_ids.py": migrations,
        "tests/test_migrations.py": migrations,
        "tests/test_database_faults.py": migrations,
        "tests/test_settings.py": True,
        f"{package}/repository.py": True,
        f"{package}/main.py": True,
        "Dockerfile": True,
        ".dockerignore": True,
        ".copier-answers.yml": True,
        "README.md": True,
        "Makefile": True,
        ".env.example": True,
        "compose.yaml": True,
        "compose.dev.yaml": True,
        "nginx/default.conf.template": answers.get("reverse_proxy") == "nginx",
        "tests/test_proxy_headers.py": answers["proxy_headers"],
        f"{package}/workers.py": model in ("gunicorn", "official-image"),
        "prometheus/prometheus.yml": answers["metrics"],
        "prometheus/alerts.yml": answers["metrics"],
        "deploy/swarm/observability.yaml": answers["metrics"] and swarm,
        "deploy/swarm/prometheus.yml": answers["metrics"] and swarm,
        # The official image's Gunicorn settings, extended; Uvicorn's supervisor's logging.
        "gunicorn_conf.py": model == "official-image",
        "logging.json": model == "uvicorn-workers",
        f"{package}/observability.py": True,
        f"{package}/metrics.py": answers["metrics"],
        f"{package}/api/metrics.py": answers["metrics"],
        f"{package}/telemetry.py": answers["tracing"],
        "tests/test_logging.py": True,
        "tests/test_request_id.py": True,
        "tests/test_metrics.py": answers["metrics"],
        "tests/test_tracing.py": answers["tracing"],
    }


def test_render_leaves_no_template_syntax(rendered: tuple[dict[str, Any], Path]) -> None:
    _, project = rendered
    for path in files(project):
        assert path.suffix != ".jinja", path
        text = path.read_text()
        if ".github" in path.relative_to(project).parts:
            # GitHub's own expressions, and docker/metadata-action's tag patterns.
            text = re.sub(r"\$\{\{.*?\}\}", "", text)
            text = re.sub(r"\{\{(version|major|minor)\}\}", "", text)
        # Docker's own Go templates in shell scripts: `docker info --format '{{.Swarm.NodeID}}'`.
        text = re.sub(r"\{\{(\.[^}]*|if [^}]*|range [^}]*|end|else)\}\}", "", text)
        for marker in ("{{", "{%", "{#"):
            assert marker not in text, f"{path.relative_to(project)} contains {marker!r}"


def test_render_has_exactly_the_files_the_answers_call_for(
    rendered: tuple[dict[str, Any], Path],
) -> None:
    answers, project = rendered
    for name, present in expected_presence(answers).items():
        assert (project / name).is_file() == present, (
            f"{name} should {'' if present else 'not '}exist"
        )


class ComposeLoader(yaml.SafeLoader):
    """YAML as Compose reads it: with its merge tags `!reset` and `!override`."""


for tag in ("!reset", "!override"):
    ComposeLoader.add_constructor(tag, lambda loader, node: None)


def test_render_data_files_parse(rendered: tuple[dict[str, Any], Path]) -> None:
    _, project = rendered
    for path in files(project):
        if path.suffix == ".toml":
            tomllib.loads(path.read_text())
        elif path.suffix in (".yml", ".yaml"):
            yaml.load(path.read_text(), Loader=ComposeLoader)
        elif path.suffix == ".json":
            json.loads(path.read_text())


@pytest.mark.parametrize(
    "lock", sorted(LOCKS.glob("*/*.lock")), ids=lambda p: f"{p.parent.name}-{p.stem}"
)
def test_shipped_toml_locks_parse(lock: Path) -> None:
    """Lock files are the same for every render of their variant: parsed once, here."""
    tomllib.loads(lock.read_text().replace("{{ project_slug }}", "my-service"))


@pytest.mark.parametrize("lock", sorted(LOCKS.glob("*/*.*")), ids=lambda p: p.name)
def test_shipped_locks_hold_no_paths_or_indexes_of_the_machine_that_made_them(lock: Path) -> None:
    text = lock.read_text()
    assert "file://" not in text and "/opt/" not in text and "--find-links" not in text


def test_render_python_compiles_and_is_ruff_clean(rendered: tuple[dict[str, Any], Path]) -> None:
    _, project = rendered
    for path in project.rglob("*.py"):
        ast.parse(path.read_text(), filename=str(path))
    run(["ruff", "check", "--no-cache", "."], cwd=project)
    run(["ruff", "format", "--check", "--no-cache", "."], cwd=project)


def test_render_dockerfile_passes_hadolint(rendered: tuple[dict[str, Any], Path]) -> None:
    _, project = rendered
    run(["hadolint", "--warning", "DL3057", "Dockerfile"], cwd=project)


def test_render_records_the_answers_for_updates(rendered: tuple[dict[str, Any], Path]) -> None:
    answers, project = rendered
    recorded = yaml.safe_load((project / ".copier-answers.yml").read_text())
    for question, value in answers.items():
        assert recorded[question] == value, question


def test_same_answers_render_identical_trees(work_dir: Path, tmp_path: Path) -> None:
    answers = MATRIX[len(MATRIX) // 2]
    first, second = tmp_path / "first", tmp_path / "second"
    for destination in (first, second):
        copier.run_copy(
            str(template_snapshot(work_dir)), destination, data=answers, defaults=True, quiet=True
        )
    assert [p.relative_to(first) for p in files(first)] == [
        p.relative_to(second) for p in files(second)
    ]
    for path in files(first):
        assert path.read_bytes() == (second / path.relative_to(first)).read_bytes(), path


def test_render_compose_files_are_valid(rendered: tuple[dict[str, Any], Path]) -> None:
    _, project = rendered
    if shutil.which("docker") is None:
        pytest.skip("no docker CLI to validate compose files with")
    env = {"DATABASE_PASSWORD": "render-test"}  # required: compose refuses to start without it
    run(["docker", "compose", "--file", "compose.yaml", "config", "--quiet"], cwd=project, env=env)
    run(
        [
            "docker",
            "compose",
            "--file",
            "compose.yaml",
            "--file",
            "compose.dev.yaml",
            "config",
            "--quiet",
        ],
        cwd=project,
        env=env,
    )


def test_every_readme_command_is_a_make_target_or_run_by_a_test(
    rendered: tuple[dict[str, Any], Path],
) -> None:
    _, project = rendered
    makefile = (project / "Makefile").read_text()
    for command in readme_commands(project):
        if command.startswith("make "):
            target = command.split()[1]
            assert re.search(rf"^{re.escape(target)}:", makefile, re.M), command
        else:
            assert command.startswith(tuple(README_COMMANDS_RUN_BY_TESTS)), (
                f"{command!r}: make it a Makefile target, or run it in a test and list it in "
                "README_COMMANDS_RUN_BY_TESTS"
            )
