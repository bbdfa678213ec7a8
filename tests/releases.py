"""Release helpers for the update tests: the release history, a template repository with
real tags to update from and to, and the guard that keeps old answers files updatable.

Tests never rely on the tags of this checkout (a CI clone may have none): they tag the
recorded release commits in a private clone, and tag the working copy as the version that
CHANGELOG.md's newest entry names.
"""

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml
from packaging.version import Version

from template import asked_questions

ROOT = Path(__file__).resolve().parents[1]
CHANGELOG = ROOT / "CHANGELOG.md"

# Every published release and the commit its tag points at. After tagging a release, add it
# here in the same commit that opens the next CHANGELOG.md entry (docs/maintaining.md).
RELEASED: dict[str, str] = {
    "v0.1.0": "d806aeec38eb43b7618307aae3ae6fcf39b5ad7f",
    "v0.2.0": "2fb6902addd0b81b26f14fa2429e99bc750d6ac2",
    "v0.3.0": "d214f4989ca09d25a132f04f7b73842896f7b9a7",
}

# Git needs an identity to commit; the machine running the tests may have none.
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Template Tests",
    "GIT_AUTHOR_EMAIL": "tests@example.com",
    "GIT_COMMITTER_NAME": "Template Tests",
    "GIT_COMMITTER_EMAIL": "tests@example.com",
}
MIGRATION_SCRIPT = "update-migrations/answers.py"


def git(*args: str, cwd: Path, check: bool = True) -> str:
    result = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env={**os.environ, **GIT_ENV},
        text=True,
        capture_output=True,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} exited {result.returncode}\n{result.stderr}")
    return result.stdout


def changelog_versions(text: str | None = None) -> list[str]:
    """The versions CHANGELOG.md has entries for, newest first, as tags ("v0.2.0")."""
    text = CHANGELOG.read_text() if text is None else text
    return re.findall(r"^## (v\d+\.\d+\.\d+)\b", text, flags=re.MULTILINE)


def newest_version() -> str:
    """The version the working copy is tested as: CHANGELOG.md's newest entry."""
    versions = changelog_versions()
    if not versions:
        raise AssertionError("CHANGELOG.md has no '## vX.Y.Z' entry")
    newest = versions[0]
    if newest in RELEASED:
        raise AssertionError(
            f"{newest}, CHANGELOG.md's newest entry, is already released "
            "(tests/releases.py RELEASED): open the entry of the next version"
        )
    return newest


def next_version(version: str) -> str:
    """A version after `version`, for template states that tests make up on top of it."""
    release = Version(version).release
    return f"v{release[0]}.{release[1] + 1}.0"


def require_commit(commit: str, version: str) -> None:
    if git("cat-file", "-t", commit, cwd=ROOT, check=False).strip() != "commit":
        raise AssertionError(
            f"commit {commit} of release {version} is not in this checkout; the update tests "
            "need the template's history (a shallow clone lacks it: git fetch --unshallow)"
        )


def copier_yml_at(commit: str) -> dict[str, Any]:
    return yaml.safe_load(git("show", f"{commit}:copier.yml", cwd=ROOT))


def _copy_working_tree(destination: Path) -> None:
    """Make `destination` (a clone) hold the working copy: uncommitted and untracked
    files included, deleted files gone."""
    listed = git("ls-files", "-z", "--cached", "--others", "--exclude-standard", cwd=ROOT)
    wanted = {path for path in listed.split("\0") if path}
    for path in git("ls-files", "-z", cwd=destination).split("\0"):
        if path and path not in wanted:
            (destination / path).unlink(missing_ok=True)
    for path in wanted:
        source = ROOT / path
        if source.is_symlink() or source.is_file():
            target = destination / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.unlink(missing_ok=True)
            shutil.copy2(source, target, follow_symlinks=False)


def template_repository(directory: Path) -> Path:
    """A git clone of this checkout whose newest commit is the working copy, tagged as
    CHANGELOG.md's newest version, with every release in RELEASED tagged at its commit.
    Made once per run, safely from parallel test processes."""
    repository = directory / "template-repository"
    if repository.exists():
        return repository
    newest = newest_version()
    for version, commit in RELEASED.items():
        require_commit(commit, version)
    scratch = Path(tempfile.mkdtemp(dir=directory)) / "template"
    git("clone", "--quiet", "--no-hardlinks", str(ROOT), str(scratch), cwd=directory)
    tags = git("tag", "--list", cwd=scratch).split()
    if tags:
        git("tag", "--delete", *tags, cwd=scratch)
    _copy_working_tree(scratch)
    git("add", "--all", cwd=scratch)
    git("commit", "--quiet", "--allow-empty", "--no-verify", "-m", "working copy", cwd=scratch)
    git("tag", newest, cwd=scratch)
    for version, commit in RELEASED.items():
        git("tag", version, commit, cwd=scratch)
    try:
        scratch.rename(repository)
    except OSError:  # another process made it first
        shutil.rmtree(scratch.parent)
    return repository


def release_on_top(repository: Path, destination: Path, changes: dict[str, str]) -> str:
    """A copy of `repository` with one more release on top of its newest tag: `changes`
    maps paths to their new text. Returns the new tag."""
    shutil.copytree(repository, destination, symlinks=True)
    tag = next_version(newest_version())
    for path, text in changes.items():
        (destination / path).write_text(text)
    git("add", "--all", cwd=destination)
    git("commit", "--quiet", "--no-verify", "-m", f"release {tag}", cwd=destination)
    git("tag", tag, cwd=destination)
    return tag


# The guard against renames without a migration ------------------------------------------


def handled_by_migrations(config: dict[str, Any], after: str, upto: str) -> set[str]:
    """Questions that `config`'s migrations rename or remove for an update from release
    `after` to `upto` (Copier runs a migration when after < its version <= upto)."""
    handled = set()
    for migration in config.get("_migrations") or []:
        version = Version(migration["version"])
        if not Version(after) < version <= Version(upto):
            continue
        command = [str(part) for part in migration["command"]]
        scripts = [i for i, part in enumerate(command) if part.endswith(MIGRATION_SCRIPT)]
        if scripts:
            operation, question = command[scripts[0] + 1 : scripts[0] + 3]
            if operation in ("rename", "remove"):
                handled.add(question)
    return handled


def unhandled_questions(
    old: dict[str, Any], new: dict[str, Any], old_version: str, new_version: str
) -> set[str]:
    """Questions a project generated from `old` has answered that `new` no longer asks and
    that no migration between the two versions takes care of: an update would drop the
    answer silently and fall back to a default."""
    missing = set(asked_questions(old)) - set(asked_questions(new))
    return missing - handled_by_migrations(new, old_version, new_version)
