"""The generated CI: GitHub Actions workflows, a GitLab pipeline, and Renovate.

Statically, over the whole render matrix: each file validates against the schema that
check-jsonschema bundles for it, zizmor finds nothing in the workflows, every action is
pinned to a commit SHA with its version, and the permissions, triggers and rules are the
documented ones. For real, on a covering set of answers: the GitHub workflow's jobs run
under `act` (steps on this machine, the marketplace actions replaced by the stand-ins in
tests/ci-actions/), the GitLab pipeline under `gitlab-ci-local` with its shell executor;
publish pushes to a local registry:2, and the image pulls back and runs; a lint error, a
failing test and a broken Dockerfile each fail their job.
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from template import (
    ROOT,
    Container,
    answers_id,
    matrix,
    private_copy,
    proxy_network,
    render,
    run,
    wait_for_health,
)

BIN = ROOT / ".venv" / "bin"
STAND_INS = ROOT / "tests" / "ci-actions"
MATRIX = matrix()
# The static checks run in slices of the matrix, so that test processes share them.
SLICES = 6

# Every action the generated workflows use: its pinned commit, the release that commit is,
# and the stand-in that replaces it under act (None: act handles it itself).
ACTIONS = {
    "actions/checkout": ("11bd71901bbe5b1630ceea73d27597364c9af683", "v4.2.2", None),
    "actions/setup-python": ("a26af69be951a213d495a4c3e4e4022e16d87065", "v5.6.0", "setup-python"),
    "actions/cache": ("5a3ec84eff668545956fd18022155c47e93e2684", "v4.2.3", "cache"),
    "astral-sh/setup-uv": ("e92bafb6253dcd438e0484186d7669ea7a8ca1cc", "v6.4.3", "setup-uv"),
    "docker/setup-buildx-action": (
        "e468171a9de216ec08956ac3ada2f0791b6bd435",
        "v3.11.1",
        "setup-buildx",
    ),
    "docker/build-push-action": (
        "263435318d21b8e681c14492fe198d362a7d2c83",
        "v6.18.0",
        "build-push",
    ),
    "docker/login-action": ("74a5d142397b4f367a81961eba4e8cd7edddf772", "v3.4.0", "login"),
    "docker/metadata-action": ("902fa8ec7d6ecbf8d84d538b9b233a880e428804", "v5.7.0", "metadata"),
}
USES = re.compile(r"^\s*(?:-\s+)?uses:\s*(\S+?)@(\S+)(?:\s+#\s*(\S+))?\s*$", re.M)


def ci_files(project: Path) -> dict[str, list[Path]]:
    """The project's CI files, by the check-jsonschema schema that describes them."""
    return {
        "vendor.github-workflows": sorted((project / ".github" / "workflows").glob("*.yml")),
        "vendor.gitlab-ci": [p for p in [project / ".gitlab-ci.yml"] if p.exists()],
        "vendor.renovate": [p for p in [project / "renovate.json"] if p.exists()],
    }


def distinct(paths: list[Path]) -> list[Path]:
    """One path per content: many answer sets generate the same CI file."""
    seen: dict[str, Path] = {}
    for path in paths:
        seen.setdefault(hashlib.sha256(path.read_bytes()).hexdigest(), path)
    return list(seen.values())


@pytest.fixture(params=range(SLICES), ids=lambda i: f"slice{i}")
def renders(request: pytest.FixtureRequest, work_dir: Path) -> list[tuple[dict[str, Any], Path]]:
    return [(answers, render(answers, work_dir)) for answers in MATRIX[request.param :: SLICES]]


def test_matrix_pairs_every_ci_provider_with_every_orchestrator_and_tool() -> None:
    pairs = {(a["ci"], a["orchestrator"]) for a in MATRIX} | {
        (a["ci"], a["dependency_tool"]) for a in MATRIX
    }
    for ci in ("github", "gitlab", "none"):
        for other in ("none", "kubernetes", "swarm", "uv", "poetry", "pip"):
            if not (ci == "none" or other == "swarm"):
                assert (ci, other) in pairs, (ci, other)


def test_each_project_has_exactly_the_ci_files_of_its_answer(
    renders: list[tuple[dict[str, Any], Path]],
) -> None:
    for answers, project in renders:
        ci = answers["ci"]
        expected = {
            ".github/workflows/ci.yml": ci == "github",
            ".github/workflows/release.yml": ci == "github",
            ".github/workflows/template-update.yml": ci == "github",
            ".gitlab-ci.yml": ci == "gitlab",
            "renovate.json": ci != "none",
            "ci/smoke-image.sh": ci != "none",
            "ci/smoke-compose.sh": ci != "none",
            "ci/compose.ci.yaml": ci != "none",
            ".github/dependabot.yml": False,
        }
        for name, present in expected.items():
            assert (project / name).is_file() == present, f"{answers_id(answers)}: {name}"
        if ci == "none":
            assert not (project / ".github").exists() and not (project / "ci").exists()


def test_every_ci_file_validates_against_its_bundled_schema(
    renders: list[tuple[dict[str, Any], Path]],
) -> None:
    by_schema: dict[str, list[Path]] = {}
    for _, project in renders:
        for schema, paths in ci_files(project).items():
            by_schema.setdefault(schema, []).extend(paths)
    for schema, paths in by_schema.items():
        if paths:
            run([str(BIN / "check-jsonschema"), "--builtin-schema", schema, *distinct(paths)])


def test_zizmor_finds_nothing_in_the_workflows(
    renders: list[tuple[dict[str, Any], Path]],
) -> None:
    workflows = distinct(
        [path for _, project in renders for path in ci_files(project)["vendor.github-workflows"]]
    )
    if workflows:
        result = run([str(BIN / "zizmor"), "--offline", "--no-progress", *workflows], check=False)
        assert result.returncode == 0, result.stdout + result.stderr


def test_every_action_is_pinned_to_its_commit_with_the_version_beside_it(
    renders: list[tuple[dict[str, Any], Path]],
) -> None:
    for _, project in renders:
        for path in ci_files(project)["vendor.github-workflows"]:
            for action, ref, comment in USES.findall(path.read_text()):
                assert action in ACTIONS, f"{path.name}: {action} is not a known action"
                sha, version, _ = ACTIONS[action]
                assert re.fullmatch(r"[0-9a-f]{40}", ref), f"{path.name}: {action}@{ref}"
                assert (ref, comment) == (sha, version), f"{path.name}: {action}@{ref} # {comment}"


def workflow(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text())
    document["on"] = document.pop(True, document.get("on"))  # YAML 1.1 reads `on` as true
    return document


def test_workflows_grant_each_job_only_what_it_needs(
    renders: list[tuple[dict[str, Any], Path]],
) -> None:
    allowed = {
        "publish": {"contents": "read", "packages": "write"},
        "check-update": {"contents": "read", "issues": "write"},
    }
    for _, project in renders:
        for path in ci_files(project)["vendor.github-workflows"]:
            document = workflow(path)
            assert document["permissions"] == {}, f"{path.name}: the default token is not empty"
            assert "pull_request_target" not in document["on"]
            assert "workflow_run" not in document["on"]
            for name, job in document["jobs"].items():
                assert job["permissions"] == allowed.get(name, {"contents": "read"}), name
                for step in job["steps"]:
                    if step.get("uses", "").startswith("actions/checkout@"):
                        assert step["with"]["persist-credentials"] is False


def test_ci_workflow_cancels_superseded_runs_and_publishes_the_default_branch_only(
    renders: list[tuple[dict[str, Any], Path]],
) -> None:
    for answers, project in renders:
        if answers["ci"] != "github":
            continue
        ci = workflow(project / ".github" / "workflows" / "ci.yml")
        assert ci["concurrency"]["cancel-in-progress"] is True
        assert "github.ref" in ci["concurrency"]["group"]
        assert ci["on"]["push"] == {"branches": ["main"]}, "tags are release.yml's"
        publish = ci["jobs"]["publish"]
        assert publish["if"] == (
            "github.event_name == 'push' && github.ref == "
            "format('refs/heads/{0}', github.event.repository.default_branch)"
        )
        assert set(publish["needs"]) == set(ci["jobs"]) - {"publish"}
        release = workflow(project / ".github" / "workflows" / "release.yml")
        assert release["on"] == {"push": {"tags": ["v*"]}}
        # A release is built from no cache, so nothing another run wrote goes into it.
        for step in release["jobs"]["publish"]["steps"]:
            action = step.get("uses", "").split("@")[0]
            assert action not in ("actions/cache", "astral-sh/setup-uv", "actions/setup-python")
            if action == "docker/build-push-action":
                assert step["with"]["no-cache"] is True and "cache-from" not in step["with"]


def test_gitlab_pipeline_publishes_on_the_default_branch_and_version_tags_only(
    renders: list[tuple[dict[str, Any], Path]],
) -> None:
    for answers, project in renders:
        if answers["ci"] != "gitlab":
            continue
        pipeline = yaml.safe_load((project / ".gitlab-ci.yml").read_text())
        rules = pipeline["publish"]["rules"]
        assert [rule["if"] for rule in rules] == [
            '$CI_PIPELINE_SOURCE == "schedule"',
            "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH",
            "$CI_COMMIT_TAG =~ /^v[0-9]/",
        ]
        assert rules[0]["when"] == "never"
        assert pipeline["workflow"]["auto_cancel"] == {"on_new_commit": "interruptible"}
        assert pipeline["default"]["interruptible"] is True
        assert pipeline["template-update"]["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "schedule"'}]
        # The registry password goes to docker login on stdin, never on a command line.
        login = [line for line in pipeline[".docker"]["before_script"] if "docker login" in line]
        assert login == [
            "printf '%s' \"$CI_REGISTRY_PASSWORD\" | docker login --username "
            '"$CI_REGISTRY_USER" --password-stdin "$CI_REGISTRY"'
        ]


def test_template_repository_workflow_is_valid_pinned_and_clean() -> None:
    path = ROOT / ".github" / "workflows" / "test.yml"
    run([str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows", path])
    result = run([str(BIN / "zizmor"), "--offline", "--no-progress", path], check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    for action, ref, comment in USES.findall(path.read_text()):
        assert (ref, comment) == ACTIONS[action][:2], action
    document = workflow(path)
    assert document["permissions"] == {}
    assert all(job["permissions"] == {"contents": "read"} for job in document["jobs"].values())


# Running the pipelines --------------------------------------------------------------------

TOOL_ENV = {
    # This machine's Python instead of a download, as the README's first steps explain.
    "UV_PYTHON": "python3",
    "UV_PYTHON_DOWNLOADS": "never",
    "UV_NO_PROGRESS": "1",
    "NO_COLOR": "1",
}
EVENT = {"ref": "refs/heads/main", "repository": {"default_branch": "main"}}


def tool(name: str) -> str | None:
    """A CI engine: act from the tooling venv, gitlab-ci-local from tests/ci-engines/
    (`npm ci --prefix tests/ci-engines`) or PATH."""
    for candidate in (BIN / name, ROOT / "tests" / "ci-engines" / "node_modules" / ".bin" / name):
        if candidate.exists():
            return str(candidate)
    return shutil.which(name)


@pytest.fixture(scope="module")
def registry(docker: None) -> Iterator[str]:
    """A registry:2 on a loopback port, where Docker pushes without TLS."""
    with Container("registry:2", "--publish", "127.0.0.1::5000") as container:
        port = run(["docker", "port", container.id, "5000/tcp"]).stdout.split(":")[-1].strip()
        deadline = time.monotonic() + 30
        while run(["docker", "exec", container.id, "true"], check=False).returncode != 0:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        yield f"127.0.0.1:{port}"


@pytest.fixture()
def postgres(docker: None) -> Iterator[Container]:
    """What the CI service container is: a throwaway PostgreSQL."""
    with Container(
        "postgres:17",
        "-e",
        "POSTGRES_USER=ci",
        "-e",
        "POSTGRES_PASSWORD=ci",
        "-e",
        "POSTGRES_DB=ci",
    ) as container:
        deadline = time.monotonic() + 90
        while (
            run(
                ["docker", "exec", container.id, "pg_isready", "--host=127.0.0.1", "-U", "ci"],
                check=False,
            ).returncode
            != 0
        ):
            assert time.monotonic() < deadline, container.logs()
            time.sleep(0.5)
        yield container


def transactions(postgres: Container) -> int:
    """Transactions committed in the service's database `ci` so far."""
    query = "SELECT xact_commit FROM pg_stat_database WHERE datname = 'ci'"
    return int(postgres.exec("psql", "-U", "ci", "-d", "ci", "-tAc", query).strip())


def repository(project: Path) -> str:
    """Commit the project, as a pipeline sees it; return the commit."""
    git = ["git", "-c", "user.name=CI", "-c", "user.email=ci@example.com"]
    if not (project / ".git").exists():
        run(["git", "init", "--quiet", "--initial-branch", "main"], cwd=project)
    run(["git", "add", "--all"], cwd=project)
    run([*git, "commit", "--quiet", "--allow-empty", "-m", "CI"], cwd=project)
    return run(["git", "rev-parse", "HEAD"], cwd=project).stdout.strip()


def act(
    project: Path,
    tmp_path: Path,
    *args: str,
    variables: dict[str, str] | None = None,
    workflow_file: str = "ci.yml",
    event: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    event_name: str = "push",
) -> subprocess.CompletedProcess[str]:
    """Run a workflow's jobs under act, on this machine, with the stand-in actions."""
    event_file = tmp_path / "event.json"
    event_file.write_text(json.dumps(event or EVENT))
    command = [
        str(BIN / "act"),
        event_name,
        "--workflows",
        f".github/workflows/{workflow_file}",
        "--eventpath",
        str(event_file),
        "--platform",
        "ubuntu-latest=-self-hosted",
        "--no-cache-server",
        "--secret",
        "REGISTRY_PASSWORD=local",
        *args,
    ]
    for action, (sha, _, stand_in) in ACTIONS.items():
        if stand_in:
            command += ["--local-repository", f"{action}@{sha}={STAND_INS / stand_in}"]
    for name, value in (variables or {}).items():
        command += ["--var", f"{name}={value}"]
    docker_config = tmp_path / "docker-config"
    docker_config.mkdir(exist_ok=True)
    for name, value in {**TOOL_ENV, "DOCKER_CONFIG": str(docker_config), **(env or {})}.items():
        command += ["--env", f"{name}={value}"]
    # act keeps its copies of the repository under XDG_CACHE_HOME: here, in tmp_path.
    return run(
        command,
        cwd=project,
        env={"XDG_CACHE_HOME": str(tmp_path / "act-cache")},
        timeout=1800,
        check=False,
    )


def gitlab_ci_local(
    project: Path, tmp_path: Path, *jobs: str, variables: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the pipeline (or some of its jobs) under gitlab-ci-local's shell executor.

    A shell runner: every job runs on this machine with its Docker engine, so an override
    file drops each job's image and services (Docker in Docker, PostgreSQL). What the
    python image gives a job, `python` with a writable pip, comes from a virtual
    environment on PATH."""
    pipeline = yaml.safe_load((project / ".gitlab-ci.yml").read_text())
    jobs_in_file = [
        name
        for name, job in pipeline.items()
        if isinstance(job, dict) and name not in ("workflow", "default", "variables")
    ]
    override: dict[str, Any] = {"include": [{"local": ".gitlab-ci.yml"}]}
    override.update({name: {"image": None, "services": None} for name in jobs_in_file})
    (project / ".gitlab-ci-shell.yml").write_text(yaml.safe_dump(override))
    runner_python = tmp_path / "runner-python"
    if not runner_python.exists():
        run(["python3", "-m", "venv", str(runner_python)])
    command = [
        str(tool("gitlab-ci-local")),
        "--file",
        ".gitlab-ci-shell.yml",
        "--json-schema-validation=false",
        # Each job in a copy of the repository, as a runner gives it: lint and test would
        # otherwise install into one .venv at the same time.
        "--shell-isolation",
        "--no-color",
        *jobs,
    ]
    shell_runner = {
        "PATH": f"{runner_python / 'bin'}:{os.environ['PATH']}",
        "BUILDX_BUILDER": "default",
        "DOCKER_HOST": "",
        "DOCKER_TLS_VERIFY": "",
        "DOCKER_CERT_PATH": "",
        "DOCKER_CONFIG": str(tmp_path / "docker-config"),
        # The default builder exports no registry cache and makes no attestations.
        "CACHE_TO": "",
        "ATTESTATIONS": "",
        **TOOL_ENV,
        **(variables or {}),
    }
    for name, value in shell_runner.items():
        command += ["--variable", f"{name}={value}"]
    return run(command, cwd=project, timeout=1800, check=False)


def gitlab_registry(registry: str) -> dict[str, str]:
    """The CI variables GitLab gives a job for the project's registry."""
    return {
        "CI_REGISTRY": registry,
        "CI_REGISTRY_USER": "ci",
        "CI_REGISTRY_PASSWORD": "local",
        "CI_REGISTRY_IMAGE": f"{registry}/ci/{uuid.uuid4().hex[:8]}",
    }


def output(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


def assert_pulls_back_and_runs(image: str, tag: str, *run_args: str) -> None:
    run(["docker", "image", "rm", "--force", f"{image}:{tag}"], check=False)
    run(["docker", "pull", "--quiet", f"{image}:{tag}"])
    try:
        labels = json.loads(
            run(
                [
                    "docker",
                    "image",
                    "inspect",
                    "--format",
                    "{{json .Config.Labels}}",
                    f"{image}:{tag}",
                ]
            ).stdout
        )
        assert labels["org.opencontainers.image.revision"]
        assert labels["org.opencontainers.image.source"]
        with Container(f"{image}:{tag}", *run_args) as container:
            assert wait_for_health(container.id) == "healthy", container.logs()
    finally:
        run(["docker", "image", "rm", "--force", f"{image}:{tag}"], check=False)


# A covering set: each provider with each database path that changes the pipeline
# (PostgreSQL adds the service and the smoke test's database; SQLite the data volume),
# with and without nginx, and two of the dependency tools (Poetry's installs are the
# slowest; its setup differs from pip's only in the tool's own install step).
GITHUB_RUN = {"ci": "github", "dependency_tool": "uv", "migrations": True, "database": "postgresql"}
GITLAB_RUN = {
    "ci": "gitlab",
    "dependency_tool": "pip",
    "migrations": True,
    "database": "sqlite",
    "reverse_proxy": "nginx",
}


def need(*tools: str) -> None:
    missing = [name for name in tools if not tool(name)]
    if missing:
        message = f"{', '.join(missing)} not installed (docs/maintaining.md, CI engines)"
        if os.environ.get("REQUIRE_DOCKER") == "1":
            pytest.fail(message)
        pytest.skip(message)


@pytest.mark.docker
def test_github_workflow_runs_lint_test_image_and_publishes_under_act(
    work_dir: Path, tmp_path: Path, registry: str, postgres: Container
) -> None:
    need("act")
    project = private_copy(render(GITHUB_RUN, work_dir), tmp_path / "project")
    commit = repository(project)
    image = f"{registry}/ci/{uuid.uuid4().hex[:8]}"
    before = transactions(postgres)
    result = act(
        project,
        tmp_path,
        variables={
            "REGISTRY": registry,
            "IMAGE_NAME": image.split("/", 1)[1],
            "REGISTRY_USER": "ci",
            "POSTGRES_HOST": postgres.ip,
        },
    )
    log = output(result)
    assert result.returncode == 0, log[-8000:]
    for job in ("lint", "test", "image", "publish"):
        assert re.search(rf"\[CI/{job}\s*\]\s+🏁\s+Job succeeded", log), job
    assert "/healthz 200" in log and "/readyz 200" in log
    # The test job's suite ran on the service: it connected to create its own database and
    # to drop it again (this test's own two queries count for at most two).
    assert transactions(postgres) - before > 2
    database = ["--env", f"DATABASE_URL=postgresql+asyncpg://ci:ci@{postgres.ip}:5432/ci"]
    assert_pulls_back_and_runs(image, f"sha-{commit}", *database)
    assert_pulls_back_and_runs(image, "main", *database)

    # A version tag: release.yml publishes the version, its minor line and the commit.
    run(["git", "tag", "v1.2.3"], cwd=project)
    tag_event = {"ref": "refs/tags/v1.2.3", "repository": {"default_branch": "main"}}
    result = act(
        project,
        tmp_path,
        workflow_file="release.yml",
        event=tag_event,
        variables={"REGISTRY": registry, "IMAGE_NAME": image.split("/", 1)[1]},
    )
    log = output(result)
    assert result.returncode == 0, log[-8000:]
    assert "--no-cache" in log, "a release is built from no cache"
    for tag in ("1.2.3", "1.2", f"sha-{commit}"):
        assert_pulls_back_and_runs(image, tag, *database)


@pytest.mark.docker
def test_gitlab_pipeline_runs_lint_test_build_and_publishes_under_gitlab_ci_local(
    work_dir: Path, tmp_path: Path, registry: str
) -> None:
    need("gitlab-ci-local", "rsync")
    project = private_copy(render(GITLAB_RUN, work_dir), tmp_path / "project")
    commit = repository(project)
    variables = {**gitlab_registry(registry), **proxy_network()}
    result = gitlab_ci_local(project, tmp_path, variables=variables)
    log = output(result)
    assert result.returncode == 0, log[-8000:]
    for job in ("lint", "test", "build", "publish"):
        assert re.search(rf"PASS\s+{job}\b", log), job
    assert "/healthz 200" in log and "/readyz 200" in log
    image = variables["CI_REGISTRY_IMAGE"]
    assert_pulls_back_and_runs(image, f"sha-{commit}")
    assert_pulls_back_and_runs(image, "main")

    # A version tag's pipeline: publish tags the version and its minor line.
    tag = {"CI_COMMIT_TAG": "v1.2.3", "CI_COMMIT_BRANCH": "", "CI_COMMIT_REF_NAME": "v1.2.3"}
    result = gitlab_ci_local(project, tmp_path, "publish", variables={**variables, **tag})
    log = output(result)
    assert result.returncode == 0 and re.search(r"PASS\s+publish\b", log), log[-8000:]
    for version in ("1.2.3", "1.2"):
        assert_pulls_back_and_runs(image, version)


def break_lint(project: Path) -> None:
    main = next(project.glob("*/main.py"))
    main.write_text(main.read_text() + "\nimport os\n")


def break_test(project: Path) -> None:
    (project / "tests" / "test_broken.py").write_text(
        "def test_fails() -> None:\n    assert 1 + 1 == 3\n"
    )


def break_dockerfile(project: Path) -> None:
    dockerfile = project / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("FROM ", "FORM ", 1))


# The change, the GitHub job and the GitLab job it fails, and what the log says why.
BREAKAGES = {
    "lint": (break_lint, "lint", "lint", "F401"),
    "test": (break_test, "test", "test", "test_broken.py::test_fails"),
    "dockerfile": (break_dockerfile, "image", "build", "unknown instruction"),
}


@pytest.mark.docker
@pytest.mark.parametrize("breakage", BREAKAGES)
def test_github_job_fails_on_its_breakage(breakage: str, work_dir: Path, tmp_path: Path) -> None:
    need("act")
    change, job, _, reason = BREAKAGES[breakage]
    project = private_copy(render(GITHUB_RUN, work_dir), tmp_path / "project")
    change(project)
    repository(project)
    result = act(project, tmp_path, "--job", job)
    log = output(result)
    assert result.returncode != 0, log[-4000:]
    assert re.search(rf"\[CI/{job}\s*\]\s+🏁\s+Job failed", log), log[-4000:]
    assert reason in log, log[-4000:]


@pytest.mark.docker
@pytest.mark.parametrize("breakage", BREAKAGES)
def test_gitlab_job_fails_on_its_breakage(
    breakage: str, work_dir: Path, tmp_path: Path, registry: str
) -> None:
    need("gitlab-ci-local", "rsync")
    change, _, job, reason = BREAKAGES[breakage]
    project = private_copy(render(GITLAB_RUN, work_dir), tmp_path / "project")
    change(project)
    repository(project)
    result = gitlab_ci_local(project, tmp_path, job, variables=gitlab_registry(registry))
    log = output(result)
    assert result.returncode != 0, log[-4000:]
    assert re.search(rf"FAIL\s+{job}\b", log) and reason in log, log[-4000:]


# New template releases ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def released_template(work_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The template as a git repository with two releases, v0.1.0 and v0.2.0."""
    from template import template_snapshot

    repository_dir = tmp_path_factory.mktemp("released") / "template"
    shutil.copytree(template_snapshot(work_dir), repository_dir)
    git = ["git", "-c", "user.name=CI", "-c", "user.email=ci@example.com"]
    run(["git", "init", "--quiet", "--initial-branch", "main"], cwd=repository_dir)
    for version in ("v0.1.0", "v0.2.0"):
        (repository_dir / "RELEASE").write_text(version)
        run(["git", "add", "--all"], cwd=repository_dir)
        run([*git, "commit", "--quiet", "-m", version], cwd=repository_dir)
        run(["git", "tag", version], cwd=repository_dir)
    return repository_dir


def generated_at_first_release(released_template: Path, ci: str, destination: Path) -> Path:
    import copier

    copier.run_copy(
        str(released_template),
        destination,
        data={"ci": ci, "migrations": False},
        defaults=True,
        quiet=True,
        vcs_ref="v0.1.0",
    )
    repository(destination)
    return destination


@pytest.mark.docker
def test_github_template_check_opens_an_issue_for_a_new_release(
    released_template: Path, tmp_path: Path
) -> None:
    need("act")
    project = generated_at_first_release(released_template, "github", tmp_path / "project")
    # GitHub's API is out of reach: a `gh` that records its calls stands in for it.
    fake_bin = tmp_path / "fake-gh"
    fake_bin.mkdir()
    calls = tmp_path / "gh-calls"
    (fake_bin / "gh").write_text(
        f'#!/bin/sh\nprintf "%s\\n" "$*" >> {calls}\n'
        f'case "$*" in *--body-file\\ -*) cat >> {calls} ;; esac\n'
    )
    (fake_bin / "gh").chmod(0o755)
    result = act(
        project,
        tmp_path,
        workflow_file="template-update.yml",
        event_name="workflow_dispatch",
        env={"PATH": f"{fake_bin}:{os.environ['PATH']}"},
    )
    log = output(result)
    assert result.returncode == 0, log[-8000:]
    recorded = calls.read_text()
    assert "issue create --title Template update available: v0.2.0" in recorded, recorded
    assert "copier update --defaults" in recorded and "v0.1.0" in recorded, recorded


@pytest.mark.docker
def test_gitlab_scheduled_template_check_fails_with_the_commands_to_run(
    released_template: Path, tmp_path: Path
) -> None:
    need("gitlab-ci-local", "rsync")
    project = generated_at_first_release(released_template, "gitlab", tmp_path / "project")
    schedule = {"CI_PIPELINE_SOURCE": "schedule"}
    result = gitlab_ci_local(project, tmp_path, "template-update", variables=schedule)
    log = output(result)
    assert result.returncode != 0 and re.search(r"FAIL\s+template-update\b", log), log[-4000:]
    assert "Template release v0.2.0 is out; this project is at v0.1.0" in log, log[-4000:]
    assert "copier update --defaults" in log
