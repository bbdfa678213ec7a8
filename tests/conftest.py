import os
from pathlib import Path

import pytest

from template import docker_available


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "docker: builds images or runs containers")
    config.addinivalue_line(
        "markers", "install: installs a generated project with its dependency tool"
    )


PYTHONS_RAN = "generated-tests-ran-on.txt"


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    """Say which Pythons ran the generated projects' own test suites."""
    record = config._tmp_path_factory.getbasetemp() / PYTHONS_RAN  # type: ignore[attr-defined]
    if record.exists():
        lines = sorted(set(record.read_text().splitlines()))
        terminalreporter.write_sep("-", "generated projects' tests ran on")
        for line in lines:
            terminalreporter.write_line(line)


def record_python_ran(work_dir: Path, line: str) -> None:
    with (work_dir / PYTHONS_RAN).open("a") as record:
        record.write(line + "\n")


@pytest.fixture(scope="session")
def work_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One directory for every test process of the run, so renders are shared."""
    return (
        tmp_path_factory.getbasetemp().parent
        if os.environ.get("PYTEST_XDIST_WORKER")
        else tmp_path_factory.getbasetemp()
    )


@pytest.fixture(scope="session")
def docker() -> None:
    """Skip when no Docker engine answers, unless REQUIRE_DOCKER=1 makes that a failure."""
    if docker_available():
        return
    message = "no Docker engine answers (run ../shared/container-env/prepare)"
    if os.environ.get("REQUIRE_DOCKER") == "1":
        pytest.fail(f"REQUIRE_DOCKER=1 but {message}")
    pytest.skip(message)
