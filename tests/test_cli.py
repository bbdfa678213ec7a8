"""The README's first command, through Copier's command line as a newcomer runs it."""

import shutil
from pathlib import Path

from template import run, template_snapshot


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
