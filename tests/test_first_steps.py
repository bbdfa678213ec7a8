"""A generated project's first steps as a newcomer takes them: `make test` straight after
cloning, without `make install`, and with the Python this machine has."""

import os
import re
import subprocess
from pathlib import Path

import pytest

from template import choices, private_copy, render, run

# uv takes this machine's python3, never a download (the README's "Which Python").
LOCAL_PYTHON = {"UV_PYTHON": "python3", "UV_PYTHON_DOWNLOADS": "never"}
INSTALL_COMMAND = {
    "uv": "uv sync --locked",
    "poetry": "poetry sync",
    "pip": "pip install --require-hashes",
}
LOCK = {"uv": "uv.lock", "poetry": "poetry.lock", "pip": "requirements-dev.txt"}


def fresh_clone(project: Path, directory: Path) -> Path:
    """The project committed to git and cloned: only what a teammate's checkout has."""
    origin = private_copy(project, directory / "origin")
    git = ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com"]
    run([*git, "init", "--quiet"], cwd=origin)
    run([*git, "add", "--all"], cwd=origin)
    run([*git, "commit", "--quiet", "--message", "Generated"], cwd=origin)
    run(["git", "clone", "--quiet", str(origin), str(directory / "clone")])
    return directory / "clone"


def targets(makefile: str) -> dict[str, tuple[str, str]]:
    """Each target of a Makefile: its prerequisites and its recipe."""
    found = {}
    for match in re.finditer(r"^([a-z-]+):([^#\n]*).*\n((?:\t.*\n)*)", makefile, re.M):
        found[match.group(1)] = (match.group(2), match.group(3))
    return found


@pytest.mark.parametrize("tool", choices("dependency_tool"))
def test_every_target_that_runs_python_installs_first(tool: str, work_dir: Path) -> None:
    project = render({"dependency_tool": tool}, work_dir)
    makefile = targets((project / "Makefile").read_text())
    runs_python = {name for name, (_, recipe) in makefile.items() if "$(PYTHON)" in recipe}

    assert {"test", "lint", "format", "run", "migrate", "revision"} <= runs_python
    for name in runs_python:
        assert "$(INSTALLED)" in makefile[name][0].split(), name


@pytest.mark.install
@pytest.mark.parametrize("tool", choices("dependency_tool"))
def test_make_test_in_a_fresh_clone_installs_first_and_again_only_after_a_lock_change(
    tool: str, work_dir: Path, tmp_path: Path
) -> None:
    project = fresh_clone(render({"dependency_tool": tool}, work_dir), tmp_path)
    # In a shell where another virtual environment is active, which Poetry would pick.
    run(["python3", "-m", "venv", "--without-pip", str(tmp_path / "active")])
    active = {**LOCAL_PYTHON, "VIRTUAL_ENV": str(tmp_path / "active")}

    first = run(["make", "test"], cwd=project, env=active)
    assert INSTALL_COMMAND[tool] in first.stdout
    assert " passed" in first.stdout and " failed" not in first.stdout

    again = run(["make", "test"], cwd=project, env=LOCAL_PYTHON)
    assert INSTALL_COMMAND[tool] not in again.stdout, "an installed .venv is reused"

    installed = (project / ".venv" / ".installed").stat().st_mtime
    os.utime(project / LOCK[tool], (installed + 1, installed + 1))
    after_lock_change = run(["make", "lint"], cwd=project, env=LOCAL_PYTHON)
    assert INSTALL_COMMAND[tool] in after_lock_change.stdout


@pytest.mark.install
def test_uv_without_the_images_python_offline_stops_and_says_how_to_use_this_machines(
    work_dir: Path, tmp_path: Path
) -> None:
    env = {key: value for key, value in os.environ.items() if key != "UV_PYTHON"}
    env["UV_PYTHON_DOWNLOADS"] = "never"
    # A Python that uv finds nowhere here, looked for where the Makefile looks: in the
    # project, whose .python-version pyenv's shims read too.
    for version in reversed(choices("python_version")):
        project = render({"python_version": version}, work_dir)
        find = ["uv", "python", "find"]
        if subprocess.run(find, cwd=project, env=env, capture_output=True).returncode != 0:
            break
    else:
        pytest.skip("this machine has every Python the template offers")
    project = private_copy(project, tmp_path / "project")
    readme = " ".join((project / "README.md").read_text().split())
    assert f"`make install` creates `.venv` with Python {version}, and downloads it" in readme
    assert "Offline, or to develop on the Python you have" in readme
    assert "`UV_PYTHON=python3 make install`" in readme

    result = subprocess.run(
        ["make", "test"], cwd=project, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode != 0
    assert f"uv found no Python {version} (.python-version)" in result.stderr
    assert "machine's python3 instead: UV_PYTHON=python3 make install" in result.stderr

    run(["make", "install"], cwd=project, env={**env, "UV_PYTHON": "python3"})
    venv_python = run(
        [".venv/bin/python", "-c", "import sys; print(sys.version_info[:2])"], cwd=project
    )
    assert venv_python.stdout.strip() != str(tuple(int(n) for n in version.split(".")))
