"""The README's first command, and Copier's command line as a newcomer runs it."""

import os
import re
import shutil
from pathlib import Path

import pytest

from template import ROOT, run, template_snapshot

PUBLISHED_SOURCE = "gh:org/fastapi-docker-template"


def readme_step(number: int) -> str:
    """The commands of step `number` in the README's first shell block, as written."""
    block = re.search(r"^```sh\n(.*?)^```", (ROOT / "README.md").read_text(), re.M | re.S)
    assert block, "the README starts with a shell block"
    steps = re.split(r"^# (\d+)\. .*$", block.group(1), flags=re.M)
    commands = dict(zip(steps[1::2], steps[2::2], strict=True))[str(number)]
    return "\n".join(
        line for line in commands.splitlines() if line.strip() and not line.startswith("#")
    )


@pytest.mark.install
def test_the_readmes_first_command_works_with_only_python_git_and_make(
    work_dir: Path, tmp_path: Path
) -> None:
    command = readme_step(1)
    assert command.count(PUBLISHED_SOURCE) == 1, command
    # Without the template's tooling (its copier, uv, python3) on PATH, in a home of its own.
    tooling = str(ROOT / ".venv" / "bin")
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if p != tooling)
    home = tmp_path / "home"
    home.mkdir()

    run(
        ["sh", "-e", "-c", command.replace(PUBLISHED_SOURCE, str(template_snapshot(work_dir)))],
        cwd=tmp_path,
        env={"PATH": path, "HOME": str(home)},
    )

    assert (tmp_path / "my-service" / "app" / "main.py").is_file()
    assert (tmp_path / "my-service" / "uv.lock").is_file()


def test_copier_copy_with_defaults_needs_no_trust_and_no_questions(
    work_dir: Path, tmp_path: Path
) -> None:
    copier = shutil.which("copier")
    assert copier, "copier is installed with the template's tooling"
    run([copier, "copy", "--defaults", str(template_snapshot(work_dir)), str(tmp_path / "svc")])

    assert (tmp_path / "svc" / "app" / "main.py").is_file()
    assert (tmp_path / "svc" / "uv.lock").is_file()


def test_copier_copy_with_a_bad_answer_ends_with_the_reason(work_dir: Path, tmp_path: Path) -> None:
    result = run(
        [
            "copier",
            "copy",
            "--defaults",
            "--data",
            "port=80",
            str(template_snapshot(work_dir)),
            str(tmp_path / "svc"),
        ],
        check=False,
    )

    assert result.returncode != 0
    # Copier's CLI prints its own traceback for --data answers it rejects (interactively it
    # asks again instead); the last line is the template's message.
    last_line = (result.stdout + result.stderr).strip().splitlines()[-1]
    assert "The port must be from 1024 to 65535 (the app runs as a non-root user" in last_line
    assert not (tmp_path / "svc" / "app").exists()
