"""The part of docker/metadata-action the generated workflows use: tags from the rules
`type=ref,event=branch`, `type=semver,pattern=...` and `type=sha,format=long`, and the OCI
labels, written to GITHUB_OUTPUT as the action does (one per line)."""

import datetime
import os
import re

ref = os.environ["GITHUB_REF"]
sha = os.environ["GITHUB_SHA"]
images = [i.strip().lower() for i in re.split(r"[\n,]", os.environ["INPUT_IMAGES"]) if i.strip()]
version = re.fullmatch(r"refs/tags/v?(\d+)\.(\d+)\.(\d+)", ref)
tags: list[str] = []
for rule in filter(None, (line.strip() for line in os.environ["INPUT_TAGS"].splitlines())):
    options = dict(part.split("=", 1) for part in rule.split(","))
    kind = options["type"]
    if kind == "ref" and options.get("event") == "branch" and ref.startswith("refs/heads/"):
        tags.append(re.sub(r"[^a-zA-Z0-9._-]", "-", ref.removeprefix("refs/heads/")))
    elif kind == "semver" and version:
        major, minor, patch = version.groups()
        tags.append(
            options["pattern"]
            .replace("{{version}}", f"{major}.{minor}.{patch}")
            .replace("{{major}}", major)
            .replace("{{minor}}", minor)
        )
    elif kind == "sha":
        tags.append(f"sha-{sha if options.get('format') == 'long' else sha[:7]}")
labels = {
    "org.opencontainers.image.created": datetime.datetime.now(datetime.UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    ),
    "org.opencontainers.image.revision": sha,
    "org.opencontainers.image.source": os.environ["GITHUB_REPOSITORY_URL"],
    "org.opencontainers.image.url": os.environ["GITHUB_REPOSITORY_URL"],
    "org.opencontainers.image.version": tags[0] if tags else "",
}
for line in filter(None, (line.strip() for line in os.environ["INPUT_LABELS"].splitlines())):
    key, value = line.split("=", 1)
    labels[key] = value
with open(os.environ["GITHUB_OUTPUT"], "a") as output:
    for name, lines in (
        ("tags", [f"{image}:{tag}" for image in images for tag in tags]),
        ("labels", [f"{k}={v}" for k, v in labels.items()]),
        ("annotations", [f"manifest:{k}={v}" for k, v in labels.items()]),
    ):
        output.write(f"{name}<<EOF\n" + "\n".join(lines) + "\nEOF\n")
