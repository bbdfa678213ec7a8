import os
from pathlib import Path

import pytest

from template import docker_available


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "docker: builds images or runs containers")
    config.addinivalue_line(
        "markers", "install: installs a generated project with its dependency tool"
    )


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
