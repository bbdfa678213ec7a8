"""Copier migration: rename or remove a recorded answer before an update renders the new
template version.

copier.yml runs it in the `before` stage of a versioned migration, in the generated project,
with Copier's own Python (PyYAML is a dependency of Copier):

    _migrations:
      - version: v0.3.0
        when: "{{ _stage == 'before' }}"
        command: ["{{ _copier_python }}", "{{ _copier_conf.src_path }}/update-migrations/answers.py",
                  "rename", "old_name", "new_name", "{{ _copier_conf.answers_file }}"]

Copier re-reads the answers file after the `before` stage, so the new version sees the
answer under its new name and writes the answers file again itself.

Usage: answers.py rename OLD NEW ANSWERS_FILE | answers.py remove NAME ANSWERS_FILE
"""

import sys
from pathlib import Path

import yaml


def main(argv: list[str]) -> int:
    if len(argv) == 4 and argv[0] == "rename":
        _, old, new, answers_file = argv
    elif len(argv) == 3 and argv[0] == "remove":
        _, old, answers_file = argv
        new = None
    else:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    path = Path(answers_file)
    text = path.read_text()
    header = "".join(line for line in text.splitlines(keepends=True) if line.startswith("#"))
    answers = yaml.safe_load(text) or {}
    # A question that was not asked (its `when` was false) has no answer to carry.
    if old in answers:
        value = answers.pop(old)
        if new is not None and new not in answers:
            answers[new] = value
        path.write_text(header + yaml.safe_dump(answers, sort_keys=True, allow_unicode=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
