"""Install generated projects with their own dependency tool, from the shipped lock, and run
their own checks: the commands a service team runs first (`make install test lint`).

These run on this machine's Python; the Docker tests run the same suites in the images'
Pythons (`docker build --target tests`).
"""

import platform
from pathlib import Path

import pytest
from conftest import record_python_ran

from template import choices, database_answers, private_copy, render, run

CASES = [(tool, db) for tool in choices("dependency_tool") for db in ["none", *choices("database")]]


@pytest.mark.install
@pytest.mark.parametrize(("tool", "database"), CASES, ids=[f"{t}-{d}" for t, d in CASES])
def test_generated_project_installs_from_its_lock_and_passes_its_tests_and_lint(
    tool: str, database: str, work_dir: Path, tmp_path: Path
) -> None:
    answers = {
        "dependency_tool": tool,
        # Both server dependency sets get installed across the cases.
        "process_model": "gunicorn" if database == "postgresql" else "uvicorn",
        **database_answers(database),
    }
    project = tmp_path / "project"
    private_copy(render(answers, work_dir), project)
    env = {"UV_PYTHON": "python3", "UV_PYTHON_DOWNLOADS": "never"}

    run(["make", "install"], cwd=project, env=env)
    result = run(["make", "test"], cwd=project, env=env)
    record_python_ran(work_dir, f"Python {platform.python_version()} (host): {tool}-{database}")
    assert " passed" in result.stdout and " failed" not in result.stdout
    run(["make", "lint"], cwd=project, env=env)
    if tool == "uv":
        run(["uv", "lock", "--check"], cwd=project, env=env)
    elif tool == "poetry":
        run(["poetry", "check", "--lock"], cwd=project, env=env)
