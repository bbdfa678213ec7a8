"""The documentation site builds without warnings, and its questions page matches copier.yml.

docs/questions.md is written by hand; these tests keep it honest: a question, a choice or a
default added to copier.yml fails here until the page describes it.
"""

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS_PAGE = ROOT / "docs" / "questions.md"
COPIER_YML: dict[str, Any] = yaml.safe_load((ROOT / "copier.yml").read_text())
# What Copier asks: not its settings (`_...`), not the values computed with `when: false`.
QUESTIONS: dict[str, dict[str, Any]] = {
    name: spec
    for name, spec in COPIER_YML.items()
    if not name.startswith("_") and spec.get("when") not in (False, "false")
}
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*$")
# A heading that is just a question's name, as the page writes them: ### `name` {#name}
QUESTION_HEADING = re.compile(r"^`([a-z_][a-z0-9_]*)`(\s*\{#[^}]*\})?$")


def sections(markdown: str) -> list[tuple[str, str]]:
    """Each heading with its body, which runs to the next heading of the same or a higher
    level (so a section includes its subsections). Lines in fenced code are not headings."""
    lines = markdown.splitlines()
    headings: list[tuple[int, int, str]] = []
    fenced = False
    for index, line in enumerate(lines):
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        elif not fenced and (match := HEADING.match(line)):
            headings.append((index, len(match[1]), match[2]))
    result = []
    for position, (start, level, text) in enumerate(headings):
        end = next(
            (index for index, other, _ in headings[position + 1 :] if other <= level),
            len(lines),
        )
        result.append((text, "\n".join(lines[start + 1 : end])))
    return result


PAGE_SECTIONS = sections(QUESTIONS_PAGE.read_text())


def question_sections(question: str) -> list[str]:
    return [body for heading, body in PAGE_SECTIONS if f"`{question}`" in heading]


def choice_values(spec: dict[str, Any]) -> list[Any]:
    """The values of a question's choices, in each form copier.yml allows."""
    choices = spec.get("choices") or {}
    if isinstance(choices, dict):
        return [c["value"] if isinstance(c, dict) else c for c in choices.values()]
    return [c[1] if isinstance(c, list) else c for c in choices]


def as_yaml_scalar(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def test_every_question_in_copier_yml_has_one_section_on_the_questions_page() -> None:
    counts = {question: len(question_sections(question)) for question in QUESTIONS}
    missing = [question for question, count in counts.items() if count == 0]
    repeated = [question for question, count in counts.items() if count > 1]
    assert not missing, f"docs/questions.md has no section (### `name`) for {missing}"
    assert not repeated, f"docs/questions.md has more than one section for {repeated}"


def test_questions_page_documents_no_question_that_copier_yml_does_not_ask() -> None:
    documented = {
        match[1] for heading, _ in PAGE_SECTIONS if (match := QUESTION_HEADING.match(heading))
    }
    assert documented <= QUESTIONS.keys(), (
        f"docs/questions.md documents questions copier.yml does not ask: "
        f"{sorted(documented - QUESTIONS.keys())}"
    )


@pytest.mark.parametrize("question", [q for q, spec in QUESTIONS.items() if "choices" in spec])
def test_every_choice_of_a_question_is_named_in_its_section(question: str) -> None:
    (section,) = question_sections(question) or [""]
    unnamed = [
        value
        for value in choice_values(QUESTIONS[question])
        if f"`{as_yaml_scalar(value)}`" not in section
    ]
    assert not unnamed, f"the `{question}` section of docs/questions.md never names {unnamed}"


@pytest.mark.parametrize("question", list(QUESTIONS))
def test_the_default_of_a_question_is_stated_in_its_section(question: str) -> None:
    (section,) = question_sections(question) or [""]
    default = QUESTIONS[question].get("default")
    if isinstance(default, str) and ("{{" in default or "{%" in default):
        expected = "**Default:**"  # computed from other answers: described in words
    else:
        expected = f"**Default:** `{as_yaml_scalar(default)}`"
    assert expected in section, (
        f"the `{question}` section of docs/questions.md should state {expected!r}"
    )


def test_docs_site_builds_without_warnings_or_broken_links(tmp_path: Path) -> None:
    mkdocs = shutil.which("mkdocs")
    if mkdocs is None:
        pytest.fail(
            "mkdocs is not installed: it comes with the template's tooling "
            "(requirements-dev.txt; run `make venv`, or put .venv/bin on PATH)"
        )
    site = tmp_path / "site"
    result = subprocess.run(
        [mkdocs, "build", "--strict", "--config-file", "mkdocs.yml", "--site-dir", str(site)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        text=True,
        capture_output=True,
        timeout=300,
    )
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stdout}{result.stderr}"
    assert (site / "questions" / "index.html").is_file()
