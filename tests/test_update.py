"""`copier update` from real release tags to the code under test, on projects that their
team has edited: the edits survive, the template's changes arrive, the lock stays the
team's, and the project still installs and passes its own tests.

Releases come from tests/releases.py: a private clone of this checkout, with the recorded
release commits tagged and the working copy tagged as CHANGELOG.md's newest version.
"""

import copy
import json
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from releases import (
    RELEASED,
    ROOT,
    changelog_versions,
    copier_yml_at,
    git,
    newest_version,
    next_version,
    release_on_top,
    require_commit,
    template_repository,
    unhandled_questions,
)

from template import COPIER_YML, private_copy, render, run

COPIER = str(Path(sys.executable).with_name("copier"))
RELEASES_OLDEST_FIRST = sorted(
    RELEASED, key=lambda version: [int(p) for p in version[1:].split(".")]
)
OLDEST, PREVIOUS = RELEASES_OLDEST_FIRST[0], RELEASES_OLDEST_FIRST[-1]
# Like the generated-project tests: the machine's Python, never a download.
TOOL_ENV = {"UV_PYTHON": "python3", "UV_PYTHON_DOWNLOADS": "never"}
LOCKS = {
    "uv": ["uv.lock"],
    "poetry": ["poetry.lock"],
    "pip": ["requirements.txt", "requirements-dev.txt"],
}
MANIFESTS = {"uv": ["pyproject.toml"], "poetry": ["pyproject.toml"], "pip": ["requirements.in"]}

# For each dependency tool, and for answers that change the most files.
UPDATE_CASES = {
    "uv-sqlite-uvicorn": {"dependency_tool": "uv"},
    "poetry-nodb-uvicorn-workers-noproxy": {
        "dependency_tool": "poetry",
        "migrations": False,
        "process_model": "uvicorn-workers",
        "proxy_headers": False,
    },
    "pip-sqlite-entrypoint-service": {
        "dependency_tool": "pip",
        "migration_step": "entrypoint",
        "package_name": "service",
    },
    "uv-postgresql-gunicorn": {
        "dependency_tool": "uv",
        "database": "postgresql",
        "process_model": "gunicorn",
        "workers": "2",
    },
    "uv-official-image": {
        "dependency_tool": "uv",
        "process_model": "official-image",
        "python_version": "3.11",
    },
}

GREETINGS_MODULE = """\
import humanize
from fastapi import APIRouter

router = APIRouter(tags=["greetings"])


@router.get("/greetings/{count}")
async def greet(count: int) -> dict[str, str]:
    return {"greeting": f"Hello {humanize.intword(count)} times"}
"""
GREETINGS_TEST = """\
from fastapi.testclient import TestClient

from {package}.settings import Settings


def test_greeting_counts_in_words(client: TestClient) -> None:
    response = client.get("/greetings/1200000")

    assert response.json() == {{"greeting": "Hello 1.2 million times"}}


def test_log_level_default_is_the_teams_choice(settings: Settings) -> None:
    assert settings.log_level == "WARNING"
"""


# A service team's work -------------------------------------------------------------------


def replace_once(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{path.name} no longer has {old!r} once: update this test"
    path.write_text(text.replace(old, new))


def edit_code(project: Path, package: str) -> None:
    """A new endpoint module with its test, registered in a template-owned file, and a
    changed setting in another."""
    (project / package / "api" / "greetings.py").write_text(GREETINGS_MODULE)
    (project / "tests" / "test_greetings.py").write_text(GREETINGS_TEST.format(package=package))
    with (project / package / "api" / "__init__.py").open("a") as api:
        api.write(f"\nfrom {package}.api import greetings  # noqa: E402\n\n")
        api.write("api_router.include_router(greetings.router)\n")
    replace_once(project / package / "settings.py", '] = "INFO"', '] = "WARNING"')


def add_dependency(project: Path, tool: str) -> None:
    """Declare `humanize` the way the project's README says (then `make lock`)."""
    if tool == "pip":
        manifest, anchor = project / "requirements.in", "fastapi>="
        entry = "humanize>=4.0\n"
    else:
        manifest, anchor = project / "pyproject.toml", '    "fastapi>='
        entry = '    "humanize>=4.0",\n'
    lines = manifest.read_text().splitlines(keepends=True)
    (index,) = [i for i, line in enumerate(lines) if line.startswith(anchor)]
    lines.insert(index + 1, entry)
    manifest.write_text("".join(lines))


# Copier and git --------------------------------------------------------------------------


def copier(*args: str, cwd: Path | None = None, check: bool = True) -> str:
    result = run([COPIER, *args], cwd=cwd, check=check)
    return result.stdout + result.stderr


def generate(repository: Path, tag: str, answers: dict[str, Any], project: Path) -> Path:
    data = project.parent / f"{project.name}-answers.yml"
    data.write_text(yaml.safe_dump(answers))
    copier(
        "copy",
        "--defaults",
        "--vcs-ref",
        tag,
        "--data-file",
        str(data),
        str(repository),
        str(project),
    )
    return project


def fresh_copy(repository: Path, tag: str, answers: dict[str, Any], project: Path) -> Path:
    """A new project to compare with; a git repository so that `tree` sees it as git would."""
    generate(repository, tag, answers, project)
    git("init", "--quiet", cwd=project)
    return project


def commit_all(project: Path, message: str) -> None:
    if not (project / ".git").exists():
        git("init", "--quiet", "--initial-branch=main", cwd=project)
    git("add", "--all", cwd=project)
    git("commit", "--quiet", "--no-verify", "-m", message, cwd=project)


def tree(project: Path) -> dict[str, bytes]:
    """The project as git sees it: committed and new files, not ignored ones."""
    listed = git("ls-files", "-z", "--cached", "--others", "--exclude-standard", cwd=project)
    paths = sorted({path for path in listed.split("\0") if path})
    return {path: (project / path).read_bytes() for path in paths if (project / path).is_file()}


def update_leftovers(project: Path) -> list[str]:
    """Conflict markers, *.rej files and unmerged paths that an update left."""
    found = [
        str(path.relative_to(project))
        for path in project.rglob("*.rej")
        if ".venv" not in path.parts and ".git" not in path.parts
    ]
    marker = re.compile(rb"^(<<<<<<< |>>>>>>> |=======$)", re.MULTILINE)
    found += [f"{path} (markers)" for path, data in tree(project).items() if marker.search(data)]
    found += git("diff", "--name-only", "--diff-filter=U", cwd=project).split()
    return found


def take_template_side(path: Path) -> None:
    """Resolve inline conflicts by keeping the template's lines alone."""
    kept, side = [], "both"
    for line in path.read_text().splitlines(keepends=True):
        if line.startswith("<<<<<<< "):
            side = "project"
        elif line.rstrip("\n") == "=======" and side == "project":
            side = "template"
        elif line.startswith(">>>>>>> "):
            side = "both"
        elif side != "project":
            kept.append(line)
    path.write_text("".join(kept))


def manifest_clashes(tool: str) -> set[str]:
    """What update_leftovers reports for a conflict in the dependency declarations."""
    return {entry for name in MANIFESTS[tool] for entry in (name, f"{name} (markers)")}


def resolve_manifest_clashes(project: Path, tool: str, leftovers: list[str]) -> None:
    """As a person would: the template's lines (its new floors too), then the team's
    dependency added again."""
    clashed = [n for n in MANIFESTS[tool] if n in leftovers or f"{n} (markers)" in leftovers]
    for name in clashed:
        take_template_side(project / name)
    if clashed:
        add_dependency(project, tool)
        git("add", *clashed, cwd=project)


def check_update(project: Path) -> dict[str, Any]:
    return json.loads(copier("check-update", "--output-format", "json", cwd=project))


def answers_of(project: Path) -> dict[str, Any]:
    return yaml.safe_load((project / ".copier-answers.yml").read_text())


def assert_same_apart_from(
    updated: dict[str, bytes], fresh: dict[str, bytes], skip: list[str]
) -> None:
    updated = {path: data for path, data in updated.items() if path not in skip}
    fresh = {path: data for path, data in fresh.items() if path not in skip}
    assert sorted(updated) == sorted(fresh), "the update has other files than a fresh copy"
    differing = [path for path in fresh if updated[path] != fresh[path]]
    assert not differing, f"these files differ from a fresh copy with the same edits: {differing}"


def assert_lock_matches_manifest(project: Path, tool: str) -> None:
    if tool == "uv":
        run(["uv", "lock", "--check"], cwd=project, env=TOOL_ENV)
    elif tool == "poetry":
        run(["poetry", "check", "--lock"], cwd=project, env=TOOL_ENV)
    else:
        # pip-tools has no check of its own: every declared requirement must be pinned.
        for manifest, lock in [
            ("requirements.in", "requirements.txt"),
            ("requirements-dev.in", "requirements-dev.txt"),
        ]:
            pinned = re.findall(
                r"^([A-Za-z0-9._-]+)==\S+ \\$", (project / lock).read_text(), re.MULTILINE
            )
            pinned = {re.sub(r"[-_.]+", "-", name).lower() for name in pinned}
            for line in (project / manifest).read_text().splitlines():
                name = re.match(r"^([A-Za-z0-9._-]+)", line)
                if name and not line.startswith(("#", "-")):
                    assert re.sub(r"[-_.]+", "-", name.group(1)).lower() in pinned, (
                        f"{line} is not pinned in {lock}"
                    )


def run_project_tests(project: Path) -> str:
    run(["make", "install"], cwd=project, env=TOOL_ENV)
    output = run(["make", "test"], cwd=project, env={**TOOL_ENV, "PYTEST_ADDOPTS": "-v"}).stdout
    assert " passed" in output and " failed" not in output
    return output


@pytest.fixture(scope="session")
def repository(work_dir: Path) -> Path:
    return template_repository(work_dir)


# Releases and the questions they asked ---------------------------------------------------


def test_changelog_has_one_entry_per_release_and_one_for_the_version_in_preparation() -> None:
    versions = changelog_versions()
    parsed = [[int(part) for part in version[1:].split(".")] for version in versions]
    assert parsed == sorted(parsed, reverse=True) and len(set(versions)) == len(versions), (
        f"CHANGELOG.md's entries are not newest first: {versions}"
    )
    assert newest_version() == versions[0]
    assert set(versions[1:]) == set(RELEASED), (
        "every entry but the newest is a release in tests/releases.py RELEASED, and only those"
    )
    for version, commit in RELEASED.items():
        require_commit(commit, version)
        # A checkout that has the tags (not every clone does) must agree with the record.
        tagged = git(
            "rev-parse", "--verify", "--quiet", f"{version}^{{commit}}", cwd=ROOT, check=False
        )
        assert tagged.strip() in ("", commit), f"tag {version} is not on {commit}"


@pytest.mark.parametrize("release", sorted(RELEASED))
def test_every_question_a_release_asked_is_still_asked_or_migrated(release: str) -> None:
    old = copier_yml_at(RELEASED[release])
    assert not unhandled_questions(old, COPIER_YML, release, newest_version()), (
        "copier.yml no longer asks these questions of "
        f"{release} and no migration renames or removes them: add a `_migrations` entry "
        "(docs/maintaining.md, 'Renaming or removing a question')"
    )


def test_question_guard_catches_a_rename_that_has_no_migration() -> None:
    newest, upcoming = newest_version(), next_version(newest_version())
    renamed = copy.deepcopy(COPIER_YML)
    renamed["contact_email"] = renamed.pop("author_email")
    renamed["_migrations"] = []
    assert unhandled_questions(COPIER_YML, renamed, newest, upcoming) == {"author_email"}

    def migration(version: str) -> dict[str, Any]:
        script = "{{ _copier_conf.src_path }}/update-migrations/answers.py"
        return {
            "version": version,
            "when": "{{ _stage == 'before' }}",
            "command": [
                "{{ _copier_python }}",
                script,
                "rename",
                "author_email",
                "contact_email",
                ".copier-answers.yml",
            ],
        }

    renamed["_migrations"] = [migration(newest)]  # runs for updates from before `newest` only
    assert unhandled_questions(COPIER_YML, renamed, newest, upcoming) == {"author_email"}
    renamed["_migrations"] = [migration(upcoming)]
    assert unhandled_questions(COPIER_YML, renamed, newest, upcoming) == set()


# Updating an edited project from a release -----------------------------------------------


# Every case from the release before this one (where most projects are), and one per
# dependency tool from each earlier release (the oldest is the longest way, across every
# release's changes; the others are where projects that skipped releases are).
ONE_PER_TOOL = (
    "uv-sqlite-uvicorn",
    "poetry-nodb-uvicorn-workers-noproxy",
    "pip-sqlite-entrypoint-service",
)
UPDATE_PATHS = sorted(
    {(PREVIOUS, case) for case in UPDATE_CASES}
    | {(release, case) for release in RELEASES_OLDEST_FIRST[:-1] for case in ONE_PER_TOOL}
)


@pytest.mark.install
@pytest.mark.parametrize(("release", "case"), UPDATE_PATHS)
def test_update_from_a_release_keeps_team_edits_and_equals_fresh_copy(
    release: str, case: str, repository: Path, tmp_path: Path
) -> None:
    answers = UPDATE_CASES[case]
    tool, package = answers["dependency_tool"], answers.get("package_name", "app")
    newest = newest_version()
    project = generate(repository, release, answers, tmp_path / "project")
    commit_all(project, "Generated")
    if tool == "pip":
        run(["make", "install"], cwd=project, env=TOOL_ENV)  # `make lock` runs pip-tools from .venv
    edit_code(project, package)
    add_dependency(project, tool)
    (project / ".env").write_text("LOG_LEVEL=DEBUG\n")
    run(["make", "lock"], cwd=project, env=TOOL_ENV)
    team_locks = {name: (project / name).read_bytes() for name in LOCKS[tool]}
    assert b"humanize" in team_locks[LOCKS[tool][0]]
    commit_all(project, "Greetings endpoint, quieter logs, humanize")

    status = check_update(project)
    assert status["update_available"] and status["latest_version"] == newest.lstrip("v")

    # No --trust: an update that crosses no migration needs no unsafe feature.
    copier("update", "--defaults", cwd=project)

    # The template's new dependencies and floors may land where the team added theirs: the
    # one clash this update may leave, resolved as the update guide says.
    # The PostgreSQL settings were rewritten next to the team's log level: a clash too, on
    # the settings' side, resolved as a person would (the template's lines, the team's edit).
    leftovers = update_leftovers(project)
    settings = f"{package}/settings.py"
    clashes = manifest_clashes(tool)
    if answers.get("database") == "postgresql":
        clashes |= {settings, f"{settings} (markers)"}
    assert set(leftovers) <= clashes, leftovers
    resolve_manifest_clashes(project, tool, leftovers)
    if settings in leftovers:
        take_template_side(project / settings)
        replace_once(project / settings, '] = "INFO"', '] = "WARNING"')
        git("add", settings, cwd=project)
    assert not update_leftovers(project)
    fresh = fresh_copy(repository, newest, answers, tmp_path / "fresh")
    edit_code(fresh, package)
    add_dependency(fresh, tool)
    assert_same_apart_from(tree(project), tree(fresh), skip=LOCKS[tool])
    assert answers_of(project)["_commit"] == newest
    for name, data in team_locks.items():
        assert (project / name).read_bytes() == data, f"the update replaced the team's {name}"
    assert (project / ".env").read_text() == "LOG_LEVEL=DEBUG\n"
    assert not check_update(project)["update_available"]

    # The documented step after an update that touched the dependency declarations.
    if git("diff", "--name-only", "HEAD", "--", *MANIFESTS[tool], cwd=project).strip():
        run(["make", "lock"], cwd=project, env=TOOL_ENV)
    output = run_project_tests(project)
    assert "test_greetings.py::test_greeting_counts_in_words PASSED" in output
    assert "test_greetings.py::test_log_level_default_is_the_teams_choice PASSED" in output
    assert_lock_matches_manifest(project, tool)


@pytest.mark.install
def test_update_with_a_changed_answer_equals_fresh_copy_with_that_answer(
    repository: Path, tmp_path: Path
) -> None:
    answers = {"dependency_tool": "uv", "process_model": "uvicorn"}
    project = generate(repository, OLDEST, answers, tmp_path / "project")
    commit_all(project, "Generated")
    edit_code(project, "app")
    add_dependency(project, "uv")
    run(["make", "lock"], cwd=project, env=TOOL_ENV)
    commit_all(project, "Greetings endpoint, quieter logs, humanize")
    team_lock = (project / "uv.lock").read_bytes()

    copier("update", "--defaults", "--data", "process_model=gunicorn", cwd=project)

    # Gunicorn's dependency lands where the team added theirs: the one clash this update
    # may leave, resolved the way the update guide says.
    leftovers = update_leftovers(project)
    assert set(leftovers) <= manifest_clashes("uv"), leftovers
    resolve_manifest_clashes(project, "uv", leftovers)
    assert not update_leftovers(project)
    changed = {**answers, "process_model": "gunicorn"}
    fresh = fresh_copy(repository, newest_version(), changed, tmp_path / "fresh")
    edit_code(fresh, "app")
    add_dependency(fresh, "uv")
    assert_same_apart_from(tree(project), tree(fresh), skip=["uv.lock"])
    assert (project / "gunicorn.conf.py").is_file()
    assert answers_of(project)["process_model"] == "gunicorn"
    # The lock is the team's, so the new server arrives with their next `make lock`.
    assert (project / "uv.lock").read_bytes() == team_lock
    run(["make", "lock"], cwd=project, env=TOOL_ENV)
    assert 'name = "gunicorn"' in (project / "uv.lock").read_text()
    run_project_tests(project)
    assert_lock_matches_manifest(project, "uv")


# Recopy ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "case"),
    [
        ("newest", "uv-sqlite-uvicorn"),
        ("newest", "pip-sqlite-entrypoint-service"),
        ("oldest", "uv-postgresql-gunicorn"),
    ],
)
def test_recopy_at_the_recorded_version_changes_nothing(
    version: str, case: str, repository: Path, tmp_path: Path
) -> None:
    tag = newest_version() if version == "newest" else OLDEST
    project = generate(repository, tag, UPDATE_CASES[case], tmp_path / "project")
    commit_all(project, "Generated")

    copier("recopy", "--defaults", "--overwrite", "--vcs-ref=:current:", cwd=project)

    assert git("status", "--porcelain", "--ignored", cwd=project) == ""
    assert answers_of(project)["_commit"] == tag


# Template changes on top of the newest version -------------------------------------------


def test_update_merges_template_change_next_to_team_edit_and_marks_a_clash(
    repository: Path, tmp_path: Path
) -> None:
    settings = "template/{{package_name}}/settings.py.jinja"
    api = "template/{{package_name}}/api/__init__.py.jinja"
    settings_text = (repository / settings).read_text()
    assert settings_text.count('] = "INFO"') == 1, "update this test: the log level default moved"
    upcoming = release_on_top(
        repository,
        tmp_path / "template",
        {
            settings: settings_text.replace('] = "INFO"', '] = "ERROR"'),
            api: '"""The routers of the API."""\n\n' + (repository / api).read_text(),
        },
    )
    project = generate(tmp_path / "template", newest_version(), {}, tmp_path / "project")
    commit_all(project, "Generated")
    edit_code(project, "app")
    commit_all(project, "Greetings endpoint, quieter logs")
    rej_project = shutil.copytree(project, tmp_path / "rej-project", symlinks=True)

    copier("update", "--defaults", cwd=project)

    assert answers_of(project)["_commit"] == upcoming
    api_text = (project / "app/api/__init__.py").read_text()
    assert api_text.startswith('"""The routers of the API."""') and "greetings.router" in api_text
    settings_text = (project / "app/settings.py").read_text()
    assert "<<<<<<< before updating" in settings_text and ">>>>>>> after updating" in settings_text
    assert '"WARNING"' in settings_text and '"ERROR"' in settings_text
    assert update_leftovers(project) == ["app/settings.py (markers)", "app/settings.py"]
    # Git refuses a plain commit while the clash is unresolved; `git commit --all` would
    # stage the markers and commit them, which is what the pre-commit hook is there for.
    refused = run(["git", "commit", "--no-verify", "-m", "update"], cwd=project, check=False)
    assert refused.returncode != 0 and "unmerged" in refused.stdout + refused.stderr

    copier("update", "--defaults", "--conflict", "rej", cwd=rej_project)

    # With --conflict rej the file takes the new template's line, and the team's clashing
    # change waits in the .rej file, which `git status` lists until it is dealt with.
    assert '] = "ERROR"' in (rej_project / "app/settings.py").read_text()
    assert '+    ] = "WARNING"' in (rej_project / "app/settings.py.rej").read_text()
    assert "greetings.router" in (rej_project / "app/api/__init__.py").read_text()


def test_generated_hooks_catch_what_an_update_leaves_outside_a_git_merge(
    work_dir: Path, tmp_path: Path
) -> None:
    """`copier update` makes no git merge, so the conflict-marker hook must not wait for one,
    and `*.rej` files must show in `git status` rather than be ignored."""
    project = private_copy(render({}, work_dir), tmp_path / "project")
    git("init", "--quiet", cwd=project)
    (project / "app/settings.py").write_text(
        "<<<<<<< before updating\nx\n=======\ny\n>>>>>>> after\n"
    )
    hooks = yaml.safe_load((project / ".pre-commit-config.yaml").read_text())
    [marker_hook] = [
        hook
        for repo in hooks["repos"]
        for hook in repo["hooks"]
        if hook["id"] == "check-merge-conflict"
    ]
    check = [sys.executable, "-m", "pre_commit_hooks.check_merge_conflict"]

    with_config = run(
        [*check, *marker_hook.get("args", []), "app/settings.py"], cwd=project, check=False
    )
    as_shipped_upstream = run([*check, "app/settings.py"], cwd=project, check=False)

    assert with_config.returncode == 1 and "Merge conflict string" in with_config.stdout
    assert as_shipped_upstream.returncode == 0, "without its args the hook ignores the markers"
    (project / "app/settings.py.rej").write_text("-x\n+y\n")
    assert "app/settings.py.rej" in git(
        "status", "--porcelain", "--untracked-files=all", cwd=project
    )


def test_migration_carries_renamed_answer_and_needs_trust_only_when_crossed(
    repository: Path, tmp_path: Path
) -> None:
    """A made-up release that renames `author_email` to `contact_email`, with the
    migration copier.yml documents for renames."""
    changes = {}
    for path in [
        repository / "copier.yml",
        *(repository / "template").rglob("*"),
        *(repository / "includes").rglob("*"),
    ]:
        if path.is_file() and "author_email" in (text := path.read_text()):
            changes[str(path.relative_to(repository))] = re.sub(
                r"\bauthor_email\b", "contact_email", text
            )
    upcoming = next_version(newest_version())
    migration = (
        "_migrations:\n"
        f"  - version: {upcoming}\n"
        "    when: \"{{ _stage == 'before' }}\"\n"
        '    command: ["{{ _copier_python }}", "{{ _copier_conf.src_path }}/update-migrations/answers.py",'
        ' "rename", "author_email", "contact_email", "{{ _copier_conf.answers_file }}"]\n'
    )
    assert changes["copier.yml"].count("\n_migrations: []\n") == 1
    changes["copier.yml"] = changes["copier.yml"].replace("\n_migrations: []\n", "\n" + migration)
    assert release_on_top(repository, tmp_path / "template", changes) == upcoming
    template = tmp_path / "template"
    answers = {"author_email": "dev@team.example"}
    project = generate(template, newest_version(), answers, tmp_path / "project")
    commit_all(project, "Generated")

    refused = run([COPIER, "update", "--defaults"], cwd=project, check=False)
    assert refused.returncode == 4 and "migrations" in refused.stderr
    assert git("status", "--porcelain", cwd=project) == ""

    copier("update", "--defaults", "--trust", cwd=project)

    recorded = answers_of(project)
    assert recorded["contact_email"] == "dev@team.example" and "author_email" not in recorded
    assert "dev@team.example" in (project / "pyproject.toml").read_text()
    assert not update_leftovers(project)
    commit_all(project, "Update")
    # Neither an update that crosses no migration nor a copy runs one: no --trust needed.
    copier("update", "--defaults", cwd=project)
    generate(template, upcoming, {"contact_email": "dev@team.example"}, tmp_path / "new-project")
