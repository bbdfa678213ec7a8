"""Bad answers fail at question time with a message that says what is wrong."""

from pathlib import Path
from typing import Any

import copier
import pytest

from template import IMPOSSIBLE, QUESTIONS, choices, template_snapshot

K8S: dict[str, Any] = {"orchestrator": "kubernetes", "k8s_autoscaling": False}
POSTGRES: dict[str, Any] = {"database": "postgresql", "k8s_autoscaling": True}

INVALID_ANSWERS: list[tuple[dict[str, Any], str]] = [
    ({"project_name": ""}, "must not be empty"),
    ({"project_name": "x" * 65}, "at most 64 characters"),
    ({"project_slug": "My_Service"}, "must be a DNS label"),
    ({"project_slug": "-service"}, "must be a DNS label"),
    ({"project_slug": "a"}, "must be a DNS label"),
    ({"project_slug": "a" * 64}, "must be a DNS label"),
    ({"project_name": "!!!"}, "must be a DNS label"),  # nothing left to derive a slug from
    ({"package_name": "My-App"}, "lowercase Python identifier"),
    ({"package_name": "1app"}, "lowercase Python identifier"),
    ({"package_name": "class"}, "is a Python keyword"),
    ({"package_name": "fastapi"}, "would shadow a module"),
    ({"package_name": "tests"}, "would shadow a module"),
    ({"package_name": "typing"}, "would shadow a module"),
    ({"description": ""}, "must not be empty"),
    ({"description": 'say "hi"'}, "must not contain"),
    ({"author_name": ""}, "must not be empty"),
    ({"author_email": "not-an-email"}, "is not an e-mail address"),
    ({"dependency_tool": "pipenv"}, "Invalid choice"),
    ({"process_model": "hypercorn"}, "Invalid choice"),
    ({"process_model": "gunicorn", "workers": "0"}, "'auto' or a whole number"),
    ({"process_model": "gunicorn", "workers": "many"}, "'auto' or a whole number"),
    ({"base_variant": "distroless"}, "Invalid choice"),
    ({"python_version": "3.10"}, "Invalid choice"),
    ({"debian_release": "bullseye"}, "Invalid choice"),
    ({"forwarded_allow_ips": "10.0.0.300"}, "Not an IP address or CIDR network: '10.0.0.300'"),
    ({"forwarded_allow_ips": "10.0.0.0/33"}, "Not an IP address or CIDR network"),
    ({"forwarded_allow_ips": "proxy.internal"}, "Not an IP address or CIDR network"),
    ({"forwarded_allow_ips": "*, 10.0.0.1"}, "'*' already trusts every address"),
    ({"reverse_proxy": "traefik"}, "Invalid choice"),
    # With nginx in compose, the trusted address is nginx's own, pinned there.
    (
        {"reverse_proxy": "nginx", "forwarded_allow_ips": "10.0.0.0/8"},
        "give one IPv4 address such as 172.30.0.10",
    ),
    ({"reverse_proxy": "nginx", "forwarded_allow_ips": "*"}, "give one IPv4 address"),
    ({"reverse_proxy": "nginx", "forwarded_allow_ips": "10.0.0.2, 10.0.0.3"}, "one IPv4"),
    # What an update from `reverse_proxy: none` offers as the default: loopback.
    ({"reverse_proxy": "nginx", "forwarded_allow_ips": "127.0.0.1"}, "not loopback"),
    ({"reverse_proxy": "nginx", "forwarded_allow_ips": "10.9.0.1"}, "Docker's gateway"),
    ({"database": "mysql"}, "Invalid choice"),
    ({"migration_step": "startup"}, "Invalid choice"),
    ({"port": 80}, "from 1024 to 65535"),
    ({"port": 70000}, "from 1024 to 65535"),
    # Combinations the official image cannot serve.
    ({"process_model": "official-image", "python_version": "3.13"}, "only has Python 3.11"),
    ({"process_model": "official-image", "python_version": "3.14"}, "only has Python 3.11"),
    ({"process_model": "official-image", "base_variant": "alpine"}, "no maintained alpine"),
    # Kubernetes (orchestrator=kubernetes): its answers, and what SQLite cannot do.
    ({"k8s_ingress_host": "API.example.com", **K8S}, "fully qualified DNS name"),
    ({"k8s_ingress_host": "localhost", **K8S}, "fully qualified DNS name"),
    ({"k8s_ingress_host": "*.example.com", **K8S}, "no wildcard"),
    ({"k8s_ingress_host": "api.example.com:443", **K8S}, "no port"),
    ({"k8s_ingress_class": "Nginx", **K8S}, "must be a Kubernetes object name"),
    ({"k8s_ingress_namespace": "ingress.nginx", **K8S}, "must be a DNS label"),
    ({"k8s_proxy_cidr": "10.244.0.0/33", **K8S}, "Not an IP address or CIDR network"),
    ({"k8s_proxy_cidr": "*", **K8S}, "Not an IP address or CIDR network: '[*]'"),
    ({"k8s_proxy_cidr": "10.244.0.0/16, 0.0.0.0/0", **K8S}, "trusts every address"),
    ({"k8s_replicas": 0, **K8S, **POSTGRES}, "Replicas must be from 1 to 100"),
    ({"k8s_replicas": 101, **K8S, **POSTGRES}, "Replicas must be from 1 to 100"),
    ({"database": "sqlite", "k8s_replicas": 3, **K8S}, "runs as one replica"),
    (
        {"k8s_autoscaling": True, "database": "sqlite", "orchestrator": "kubernetes"},
        "An autoscaler",
    ),
    (
        {"k8s_replicas": 4, "k8s_max_replicas": 3, **K8S, **POSTGRES},
        "from k8s_replicas [(]4[)] to 100",
    ),
    ({"k8s_max_replicas": 101, **K8S, **POSTGRES}, "to 100"),
]


@pytest.mark.parametrize(
    ("answers", "message"),
    INVALID_ANSWERS,
    ids=[f"{'+'.join(f'{k}={v}' for k, v in a.items())[:60]}" for a, _ in INVALID_ANSWERS],
)
def test_invalid_answer_is_rejected_with_its_reason(
    answers: dict[str, Any], message: str, work_dir: Path, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match=message) as error:
        copier.run_copy(
            str(template_snapshot(work_dir)), tmp_path, data=answers, defaults=True, quiet=True
        )
    assert "Traceback" not in str(error.value)
    assert not any(tmp_path.iterdir()), "nothing is written for rejected answers"


def test_every_question_and_choice_has_an_invalid_case_or_choices() -> None:
    """A new free-text question must come with bad-answer cases here."""
    covered = {question for answers, _ in INVALID_ANSWERS for question in answers}
    for question, spec in QUESTIONS.items():
        if "choices" not in spec and spec["type"] != "bool":
            assert question in covered, f"add invalid answers for {question!r}"


def test_impossible_combinations_are_all_rejected_here() -> None:
    rejected = {
        tuple(v for pair in sorted(a.items()) for v in pair)
        for a, _ in INVALID_ANSWERS
        if len(a) == 2
    }
    for q1, v1, q2, v2 in IMPOSSIBLE:
        assert tuple(v for pair in sorted({q1: v1, q2: v2}.items()) for v in pair) in rejected
        assert v1 in choices(q1) and v2 in choices(q2)


def test_valid_unusual_answers_are_accepted(work_dir: Path, tmp_path: Path) -> None:
    copier.run_copy(
        str(template_snapshot(work_dir)),
        tmp_path,
        data={
            "project_name": "Billing API v2",
            "package_name": "billing",
            "forwarded_allow_ips": "*",
            "process_model": "gunicorn",
            "workers": "4",
            "port": 65535,
        },
        defaults=True,
        quiet=True,
    )
    answers = (tmp_path / ".copier-answers.yml").read_text()
    assert "project_slug: billing-api-v2" in answers
    assert (tmp_path / "billing" / "main.py").is_file()


SLUGS = [
    ("Øresund Ticket Desk", "oresund-ticket-desk"),
    ("Łódź Stock Sync", "lodz-stock-sync"),
    ("Crème Brûlée", "creme-brulee"),
    ("Straße", "strasse"),
    ("Ærø", "aero"),
    ("São Paulo", "sao-paulo"),
    ("İstanbul Ferries", "istanbul-ferries"),
    ("Þórshöfn Œuvre", "thorshofn-oeuvre"),
    ("Cre\u0300me", "creme"),  # decomposed: "e" and a combining grave accent
    ("Billing API v2", "billing-api-v2"),
]


@pytest.mark.parametrize(("name", "slug"), SLUGS, ids=[slug for _, slug in SLUGS])
def test_the_default_slug_spells_latin_letters_in_ascii(
    name: str, slug: str, work_dir: Path, tmp_path: Path
) -> None:
    copier.run_copy(
        str(template_snapshot(work_dir)),
        tmp_path,
        data={"project_name": name},
        defaults=True,
        quiet=True,
    )
    assert f"project_slug: {slug}\n" in (tmp_path / ".copier-answers.yml").read_text()
    assert (tmp_path / "README.md").read_text().startswith(f"# {name}\n")
