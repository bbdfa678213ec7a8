"""docker/build-push-action's inputs as a `docker buildx build` command line, run on this
machine's default builder. What that builder cannot do (the GitHub Actions cache, and
attestations) is dropped, and the log says so."""

import os
import subprocess
import sys


def inputs(name: str) -> list[str]:
    value = os.environ.get(f"INPUT_{name}", "")
    return [line.strip() for line in value.splitlines() if line.strip()]


def flag(name: str) -> bool:
    return os.environ.get(f"INPUT_{name}", "").strip().lower() == "true"


command = ["docker", "buildx", "build", "--progress=plain"]
if file := os.environ.get("INPUT_FILE"):
    command += ["--file", file]
if target := os.environ.get("INPUT_TARGET"):
    command += ["--target", target]
for tag in inputs("TAGS"):
    command += ["--tag", tag]
for label in inputs("LABELS"):
    command += ["--label", label]
if flag("NO_CACHE"):
    command.append("--no-cache")
for kind in ("CACHE_FROM", "CACHE_TO"):
    for cache in inputs(kind):
        if "type=gha" in cache:
            print(f"stand-in: no GitHub Actions cache here, dropped {kind.lower()} {cache}")
        else:
            command += [f"--{kind.lower().replace('_', '-')}", cache]
for attestation in ("SBOM", "PROVENANCE"):
    if value := os.environ.get(f"INPUT_{attestation}"):
        print(
            f"stand-in: the default builder makes no attestations, dropped {attestation.lower()}={value}"
        )
if flag("PUSH"):
    command.append("--push")
if flag("LOAD"):
    command.append("--load")
command.append(os.environ.get("INPUT_CONTEXT") or ".")
print("+", " ".join(command), flush=True)
sys.exit(subprocess.run(command).returncode)
