"""The Kubernetes manifests (orchestrator=kubernetes): every overlay of every answer set that
changes them builds with `kubectl kustomize`, validates against the API schemas of the oldest
and newest supported Kubernetes, passes checkov, and keeps the invariants the pods rely on.

No cluster runs here. The Docker tests run each container as its manifest specifies (image,
command, environment, user, read-only root, capabilities, a tmpfs per emptyDir, a volume per
PersistentVolumeClaim, the Secret as a file), in the pod's order, and probe it as the kubelet
would: containers run as their manifests say, not a cluster.
"""

import concurrent.futures
import fcntl
import functools
import re
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from template import (
    ROOT,
    alembic_versions_command,
    answers_id,
    base_image,
    build,
    container_ip,
    head_revision,
    image_exists,
    matrix,
    private_copy,
    process_table,
    render,
    run,
)

K8S = "deploy/kubernetes"
OVERLAYS = ("dev", "prod")
# The oldest Kubernetes with the preStop sleep action on by default, and the newest that
# kubernetes-validate knows.
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
TOOLS_LOCK = next(ROOT.glob("template/deploy/*kubernetes*/requirements.txt"))
# What decides the manifests; the other answers only change what is inside the image.
K8S_AXES = (
    "process_model",
    "workers",
    "migrations",
    "database",
    "migration_step",
    "proxy_headers",
    "port",
    "package_name",
)


def kubernetes_answer_sets() -> list[dict[str, Any]]:
    """Each distinct combination of K8S_AXES in the render matrix, with orchestrator=kubernetes;
    the matrix's own kubernetes renders first, so their renders are shared with test_render."""
    ordered = sorted(matrix(), key=lambda a: a["orchestrator"] != "kubernetes")
    chosen: dict[tuple[Any, ...], dict[str, Any]] = {}
    for answers in ordered:
        key = tuple(answers.get(axis) for axis in K8S_AXES)
        chosen.setdefault(key, {**answers, "orchestrator": "kubernetes"})
    sets = list(chosen.values())
    # The Kubernetes answers themselves, varied where the database allows it.
    for index, answers in enumerate(sets):
        if answers.get("database") != "sqlite" or not answers["migrations"]:
            answers["k8s_autoscaling"] = index % 2 == 0
            answers["k8s_replicas"] = 2 + index % 3
        if index % 3 == 1:
            answers.update(
                k8s_ingress_host="api.internal.example.org",
                k8s_ingress_class="traefik",
                k8s_proxy_cidr="10.244.0.0/16, fd00:10:244::/56",
            )
            if not answers["proxy_headers"]:
                del answers["k8s_proxy_cidr"]
    return sets


K8S_MATRIX = kubernetes_answer_sets()


def k8s_id(answers: dict[str, Any]) -> str:
    extra = "-hpa" if answers.get("k8s_autoscaling") else ""
    return f"{answers_id(answers)}-w{answers.get('workers', 1)}-p{answers['port']}{extra}"


@functools.cache
def kustomize(project: Path, overlay: str) -> str:
    """An overlay's manifests (cached: a render never changes, and kubectl takes a second)."""
    return run(["kubectl", "kustomize", f"{K8S}/overlays/{overlay}"], cwd=project).stdout


def objects(project: Path, overlay: str) -> dict[tuple[str, str], dict[str, Any]]:
    """The overlay's objects by (kind, name)."""
    docs = [d for d in yaml.safe_load_all(kustomize(project, overlay)) if d]
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def one(objs: dict[tuple[str, str], dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [o for (k, _), o in objs.items() if k == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def maybe(objs: dict[tuple[str, str], dict[str, Any]], kind: str) -> dict[str, Any] | None:
    found = [o for (k, _), o in objs.items() if k == kind]
    return found[0] if found else None


def dockerfile_command(project: Path) -> tuple[list[str], list[str]]:
    """The runtime stage's ENTRYPOINT and CMD, in exec form."""
    text = (project / "Dockerfile").read_text()
    runtime = text[text.index("AS runtime") :]

    def exec_form(instruction: str) -> list[str]:
        match = re.search(rf"^{instruction} (\[.*\])$", runtime, re.M)
        return yaml.safe_load(match.group(1)) if match else []

    return exec_form("ENTRYPOINT"), exec_form("CMD")


def worker_count(answers: dict[str, Any]) -> int:
    if answers["process_model"] == "uvicorn":
        return 1
    return 2 if answers["workers"] == "auto" else int(answers["workers"])


def mebibytes(quantity: str) -> int:
    assert quantity.endswith("Mi"), quantity
    return int(quantity[:-2])


@pytest.fixture(params=K8S_MATRIX, ids=[k8s_id(a) for a in K8S_MATRIX])
def k8s_rendered(request: pytest.FixtureRequest, work_dir: Path) -> tuple[dict[str, Any], Path]:
    return request.param, render(request.param, work_dir)


@pytest.fixture(scope="session")
def k8s_tools(work_dir: Path) -> Path:
    """kubernetes-validate and checkov, from the lock a generated project installs them from."""
    venv = work_dir / "k8s-tools"
    # A venv cannot move (its scripts name their interpreter): made in place, under a lock.
    with (work_dir / "k8s-tools.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (venv / "installed").exists():
            run(["uv", "venv", "--quiet", "--clear", "--python", "python3", str(venv)])
            run(
                ["uv", "pip", "install", "--quiet", "--require-hashes", "-r", str(TOOLS_LOCK)],
                env={"VIRTUAL_ENV": str(venv)},
            )
            (venv / "installed").touch()
    return venv / "bin"


@pytest.fixture(scope="session")
def all_overlays(work_dir: Path) -> Path:
    """Every overlay of every answer set, rendered once into one directory."""
    directory = Path(tempfile.mkdtemp(dir=work_dir, prefix="k8s-overlays-"))
    for answers in K8S_MATRIX:
        project = render(answers, work_dir)
        for overlay in OVERLAYS:
            (directory / f"{k8s_id(answers)}-{overlay}.yaml").write_text(
                kustomize(project, overlay)
            )
    return directory


# Static: schemas and policies -----------------------------------------------------------


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_overlay_validates_strictly_against_the_supported_kubernetes_versions(
    version: str, k8s_tools: Path, all_overlays: Path
) -> None:
    files = sorted(str(p) for p in all_overlays.glob("*.yaml"))
    assert len(files) == 2 * len(K8S_MATRIX)
    run(
        [str(k8s_tools / "kubernetes-validate"), "--strict", "--quiet", "-k", version, *files],
        timeout=1800,
    )


def test_every_overlay_passes_checkov_with_reasons_for_each_skip(
    k8s_tools: Path, all_overlays: Path
) -> None:
    result = run(
        [
            str(k8s_tools / "checkov"),
            "--quiet",
            "--compact",
            "--skip-download",
            "--framework",
            "kubernetes",
            "--directory",
            str(all_overlays),
        ],
        check=False,
        timeout=1800,
    )
    assert result.returncode == 0 and "Failed checks: 0" in result.stdout, result.stdout[-6000:]
    for path in all_overlays.glob("*.yaml"):
        for doc in filter(None, yaml.safe_load_all(path.read_text())):
            for key, value in (doc["metadata"].get("annotations") or {}).items():
                if key.startswith("checkov.io/skip"):
                    check, _, reason = value.partition("=")
                    assert re.fullmatch(r"CKV2?_K8S_\d+", check) and len(reason) > 20, value


def test_deploy_folder_exists_only_for_kubernetes(work_dir: Path) -> None:
    for answers in matrix()[:6]:
        project = render(answers, work_dir)
        assert (project / K8S).is_dir() == (answers["orchestrator"] == "kubernetes"), answers
        if answers["orchestrator"] == "none":
            assert not (project / "deploy").exists()
            assert "k8s-" not in (project / "Makefile").read_text()


def test_make_k8s_manifests_prints_the_overlay_kubectl_builds(work_dir: Path) -> None:
    project = render(K8S_MATRIX[0], work_dir)
    for overlay in OVERLAYS:
        printed = run(
            ["make", "--no-print-directory", "k8s-manifests", f"OVERLAY={overlay}"], cwd=project
        )
        assert printed.stdout == kustomize(project, overlay)


@pytest.mark.install
def test_make_k8s_validate_installs_its_tools_from_the_lock_and_fails_on_a_weakened_pod(
    work_dir: Path, tmp_path: Path
) -> None:
    project = private_copy(render(K8S_MATRIX[0], work_dir), tmp_path / "project")
    passed = run(["make", "k8s-validate"], cwd=project, timeout=1800)
    assert "Failed checks: 0" in passed.stdout, passed.stdout[-3000:]
    assert (project / K8S / ".tools" / ".installed").is_file()
    run(["git", "init", "--quiet"], cwd=project)
    untracked = run(["git", "status", "--porcelain", "--untracked-files=all", K8S], cwd=project)
    assert ".tools/" not in untracked.stdout and "rendered/" not in untracked.stdout
    deployment = project / K8S / "base" / "deployment.yaml"
    weakened = deployment.read_text().replace(
        "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false"
    )
    deployment.write_text(weakened)
    failed = run(["make", "k8s-validate"], cwd=project, check=False, timeout=900)
    assert failed.returncode != 0 and "CKV_K8S_22" in failed.stdout, failed.stdout[-3000:]


# Static: the pod's invariants -----------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_meet_the_restricted_pod_security_standard_as_the_images_user(
    k8s_rendered: tuple[dict[str, Any], Path], overlay: str
) -> None:
    _, project = k8s_rendered
    user = re.search(r"^USER (\d+):(\d+)$", (project / "Dockerfile").read_text(), re.M)
    assert user
    objs = objects(project, overlay)
    namespace = one(objs, "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for kind in ("Deployment", "Job"):
        if not (workload := maybe(objs, kind)):
            continue
        pod = workload["spec"]["template"]["spec"]
        context = pod["securityContext"]
        assert context["runAsNonRoot"] is True
        assert (str(context["runAsUser"]), str(context["runAsGroup"])) == user.groups()
        assert context["seccompProfile"]["type"] == "RuntimeDefault"
        assert pod["automountServiceAccountToken"] is False
        for container in pod.get("initContainers", []) + pod["containers"]:
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False
            assert security["readOnlyRootFilesystem"] is True
            assert security["capabilities"]["drop"] == ["ALL"]
            mounts = {m["mountPath"] for m in container["volumeMounts"]}
            assert "/tmp" in mounts
            limits, requests = container["resources"]["limits"], container["resources"]["requests"]
            assert limits["memory"] == requests["memory"]


def test_app_container_runs_the_dockerfiles_command_on_the_port_answered(
    k8s_rendered: tuple[dict[str, Any], Path],
) -> None:
    answers, project = k8s_rendered
    entrypoint, cmd = dockerfile_command(project)
    app = one(objects(project, "prod"), "Deployment")["spec"]["template"]["spec"]["containers"][0]
    if entrypoint:
        assert (app["command"], app["args"]) == (entrypoint, cmd)
    else:
        assert (app["command"], app.get("args")) == (cmd, None)
    assert app["ports"] == [{"name": "http", "containerPort": answers["port"]}]
    if answers["process_model"] == "gunicorn":
        assert f'bind = "0.0.0.0:{answers["port"]}"' in (project / "gunicorn.conf.py").read_text()


def test_probes_reach_the_apps_health_routes_on_its_port_with_an_allowed_host(
    k8s_rendered: tuple[dict[str, Any], Path],
) -> None:
    answers, project = k8s_rendered
    health = (project / answers["package_name"] / "api" / "health.py").read_text()
    objs = objects(project, "prod")
    app = one(objs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    config = one(objs, "ConfigMap")["data"]
    paths = {}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        get = app[probe]["httpGet"]
        assert get["port"] == "http"
        assert re.search(rf'@router\.get\(\s*"{re.escape(get["path"])}"', health), get["path"]
        host = {h["name"]: h["value"] for h in get["httpHeaders"]}["Host"]
        assert host in config["ALLOWED_HOSTS"].split(",")
        paths[probe] = get["path"]
    assert paths == {
        "startupProbe": "/healthz",
        "readinessProbe": "/readyz",
        "livenessProbe": "/healthz",
    }
    assert one(objs, "Ingress")["spec"]["rules"][0]["host"] in config["ALLOWED_HOSTS"]


def test_grace_period_covers_the_prestop_the_graceful_shutdown_and_a_margin(
    k8s_rendered: tuple[dict[str, Any], Path],
) -> None:
    answers, project = k8s_rendered
    pod = one(objects(project, "prod"), "Deployment")["spec"]["template"]["spec"]
    pre_stop = pod["containers"][0]["lifecycle"]["preStop"]
    assert list(pre_stop) == ["sleep"], "the native sleep action, no shell in the image needed"
    files = [(project / "Dockerfile").read_text()]
    if answers["process_model"] == "gunicorn":
        files.append((project / "gunicorn.conf.py").read_text())
    shutdown = re.findall(
        r"--timeout-graceful-shutdown\", \"(\d+)|graceful_timeout = (\d+)|GRACEFUL_TIMEOUT=(\d+)",
        "\n".join(files),
    )
    graceful = max(int(n) for groups in shutdown for n in groups if n)
    margin = pod["terminationGracePeriodSeconds"] - pre_stop["sleep"]["seconds"] - graceful
    assert 1 <= margin <= 5, (pod["terminationGracePeriodSeconds"], pre_stop, graceful)


def test_cpu_limit_is_the_worker_count_and_memory_grows_with_it(
    k8s_rendered: tuple[dict[str, Any], Path],
) -> None:
    answers, project = k8s_rendered
    app = one(objects(project, "prod"), "Deployment")["spec"]["template"]["spec"]["containers"][0]
    workers = worker_count(answers)
    assert app["resources"]["limits"]["cpu"] == str(workers)
    memory = mebibytes(app["resources"]["limits"]["memory"])
    # The benchmark: about 82 MB per worker after load, 28 MB per supervisor.
    assert memory >= 96 * workers + (32 if answers["process_model"] != "uvicorn" else 0)
    assert memory <= 64 + 192 * workers


def test_replicas_strategy_and_storage_follow_the_database(
    k8s_rendered: tuple[dict[str, Any], Path],
) -> None:
    answers, project = k8s_rendered
    sqlite = answers["migrations"] and answers["database"] == "sqlite"
    dev, prod = objects(project, "dev"), objects(project, "prod")
    deployment = one(prod, "Deployment")
    hpa = maybe(prod, "HorizontalPodAutoscaler")
    assert maybe(dev, "HorizontalPodAutoscaler") is None
    assert one(dev, "Deployment")["spec"]["replicas"] == 1
    budget = one(prod, "PodDisruptionBudget")["spec"]
    assert budget["maxUnavailable"] == 1 and budget["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
    if sqlite:
        assert deployment["spec"]["replicas"] == 1
        assert deployment["spec"]["strategy"] == {"type": "Recreate"}
        assert one(prod, "PersistentVolumeClaim")["spec"]["accessModes"] == ["ReadWriteOnce"]
        assert hpa is None
        return
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    spread = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert {c["topologyKey"] for c in spread} == {
        "kubernetes.io/hostname",
        "topology.kubernetes.io/zone",
    }
    assert {c["whenUnsatisfiable"] for c in spread} == {"ScheduleAnyway"}
    assert maybe(prod, "PersistentVolumeClaim") is None
    if answers["k8s_autoscaling"]:
        assert "replicas" not in deployment["spec"], "the autoscaler owns the count"
        assert hpa and hpa["apiVersion"] == "autoscaling/v2"
        assert hpa["spec"]["minReplicas"] == answers["k8s_replicas"]
        assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    else:
        assert hpa is None and deployment["spec"]["replicas"] == answers["k8s_replicas"]


def test_migrations_run_once_and_no_pod_serves_before_the_schema_is_at_head(
    k8s_rendered: tuple[dict[str, Any], Path],
) -> None:
    answers, project = k8s_rendered
    package = answers["package_name"]
    objs = objects(project, "prod")
    pod = one(objs, "Deployment")["spec"]["template"]["spec"]
    init = [c["command"] for c in pod.get("initContainers", [])]
    job = maybe(objs, "Job")
    migrate = ["python", "-m", f"{package}.db.migrate"]
    if not answers["migrations"]:
        assert init == [] and job is None
    elif answers["database"] == "sqlite" or answers["migration_step"] == "entrypoint":
        assert init == [migrate] and job is None  # in the pod: the PVC's, or under the lock
    else:
        assert init == [["python", "-m", f"{package}.db.wait_for_head"]]
        assert job and job["spec"]["template"]["spec"]["containers"][0]["command"] == migrate
        spec = job["spec"]
        assert spec["backoffLimit"] >= 1 and spec["activeDeadlineSeconds"] > 0
        assert spec["ttlSecondsAfterFinished"] > 0
        assert spec["template"]["spec"]["restartPolicy"] == "Never"


def test_database_password_is_a_mounted_secret_that_the_manifests_never_contain(
    k8s_rendered: tuple[dict[str, Any], Path],
) -> None:
    answers, project = k8s_rendered
    for overlay in OVERLAYS:
        objs = objects(project, overlay)
        assert maybe(objs, "Secret") is None
        config = one(objs, "ConfigMap")["data"]
        assert not any("PASSWORD" in key for key in config)
        if not (answers["migrations"] and answers["database"] == "postgresql"):
            continue
        assert {"DATABASE_HOST", "DATABASE_PORT", "DATABASE_NAME", "DATABASE_USER"} <= set(config)
        for kind in ("Deployment", "Job"):
            if not (workload := maybe(objs, kind)):
                continue
            pod = workload["spec"]["template"]["spec"]
            volumes = {v["name"]: v for v in pod["volumes"]}
            for container in pod.get("initContainers", []) + pod["containers"]:
                env = {e["name"]: e["value"] for e in container["env"]}
                secret_file = Path(env["DATABASE_PASSWORD_FILE"])
                mount = next(
                    m
                    for m in container["volumeMounts"]
                    if m["mountPath"] == str(secret_file.parent)
                )
                assert mount["readOnly"] is True
                secret = volumes[mount["name"]]["secret"]
                assert secret["secretName"] == f"{project_slug(project)}-database"


def test_names_labels_and_ports_agree_across_objects(
    k8s_rendered: tuple[dict[str, Any], Path],
) -> None:
    answers, project = k8s_rendered
    for overlay in OVERLAYS:
        objs = objects(project, overlay)
        deployment = one(objs, "Deployment")
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        pod = deployment["spec"]["template"]["spec"]
        service = one(objs, "Service")
        assert service["spec"]["selector"].items() <= pod_labels.items()
        assert deployment["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]
        budget = one(objs, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"]
        assert budget == service["spec"]["selector"]
        assert service["spec"]["ports"][0]["targetPort"] == "http"
        backend = one(objs, "Ingress")["spec"]["rules"][0]["http"]["paths"][0]["backend"]
        assert backend["service"] == {"name": service["metadata"]["name"], "port": {"name": "http"}}
        policy = one(objs, "NetworkPolicy")["spec"]
        assert policy["podSelector"]["matchLabels"].items() <= pod_labels.items()
        assert policy["policyTypes"] == ["Ingress", "Egress"]
        assert policy["ingress"][0]["ports"] == [{"port": "http"}]
        namespace = policy["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"]
        ingress_class = answers.get("k8s_ingress_class", "nginx")
        expected = "ingress-nginx" if ingress_class == "nginx" else ingress_class
        assert namespace == {"kubernetes.io/metadata.name": expected}
        egress_ports = {p["port"] for rule in policy["egress"] for p in rule["ports"]}
        database = answers["migrations"] and answers["database"] == "postgresql"
        assert egress_ports == ({53, 5432} if database else {53})
        config = one(objs, "ConfigMap")
        assert pod["serviceAccountName"] in {n for k, n in objs if k == "ServiceAccount"}
        for container in pod.get("initContainers", []) + pod["containers"]:
            assert container["envFrom"] == [{"configMapRef": {"name": config["metadata"]["name"]}}]
        claims = [
            v["persistentVolumeClaim"]["claimName"]
            for v in pod["volumes"]
            if "persistentVolumeClaim" in v
        ]
        assert claims == [n for k, n in objs if k == "PersistentVolumeClaim"]
        if answers["proxy_headers"]:
            trusted = answers.get("k8s_proxy_cidr", "10.0.0.0/8").replace(" ", "")
            assert config["data"]["FORWARDED_ALLOW_IPS"] == trusted
        else:
            assert "FORWARDED_ALLOW_IPS" not in config["data"]


def test_prod_image_is_a_release_never_latest_and_dev_a_local_one(
    k8s_rendered: tuple[dict[str, Any], Path],
) -> None:
    _, project = k8s_rendered
    for overlay in OVERLAYS:
        objs = objects(project, overlay)
        images = set()
        for kind in ("Deployment", "Job"):
            if workload := maybe(objs, kind):
                pod = workload["spec"]["template"]["spec"]
                images |= {c["image"] for c in pod.get("initContainers", []) + pod["containers"]}
        assert len(images) == 1, images
        name, _, tag = images.pop().rpartition(":")
        if overlay == "prod":
            assert re.fullmatch(r"\d+\.\d+\.\d+", tag) and "/" in name
        else:
            assert tag == "dev"


def project_slug(project: Path) -> str:
    return yaml.safe_load((project / ".copier-answers.yml").read_text())["project_slug"]


# Docker: each container as its manifest specifies ----------------------------------------

DOCKER_SETS: list[dict[str, Any]] = [
    {
        "orchestrator": "kubernetes",
        "dependency_tool": "uv",
        "base_variant": "slim",
        "python_version": "3.13",
        "process_model": "uvicorn",
        "migrations": True,
        "database": "sqlite",
        "migration_step": "separate",
        "package_name": "service",
        "port": 8080,
    },
    {
        "orchestrator": "kubernetes",
        "dependency_tool": "uv",
        "base_variant": "slim",
        "python_version": "3.13",
        "process_model": "gunicorn",
        "workers": "auto",
        "migrations": True,
        "database": "postgresql",
        "migration_step": "separate",
        "proxy_headers": False,
    },
    {
        "orchestrator": "kubernetes",
        "dependency_tool": "uv",
        "base_variant": "slim",
        "python_version": "3.11",
        "process_model": "official-image",
        "workers": "auto",
        "migrations": False,
    },
    {
        "orchestrator": "kubernetes",
        "dependency_tool": "uv",
        "base_variant": "slim",
        "python_version": "3.13",
        "process_model": "uvicorn",
        "migrations": True,
        "database": "postgresql",
        "migration_step": "entrypoint",
    },
]


def docker_id(answers: dict[str, Any]) -> str:
    return f"{answers['process_model']}-{answers.get('database', 'nodb')}"


DATABASE_PASSWORD = "k8s test password: with spaces, @ and /"


def quantity_mib(value: str) -> int:
    return mebibytes(value) if value.endswith("Mi") else int(value) // 2**20


class Pod:
    """A pod spec's containers run with Docker, one after another as the kubelet starts
    them, sharing the pod's volumes: a tmpfs per emptyDir (per container: nothing here
    passes data through one), a Docker volume per PersistentVolumeClaim, a directory per
    Secret. Not a cluster: no scheduler, Service or NetworkPolicy."""

    def __init__(
        self,
        spec: dict[str, Any],
        image: str,
        config: dict[str, str],
        network: str,
        secrets: dict[str, Path],
        claims: dict[str, str],
    ) -> None:
        self.spec, self.image, self.config, self.network = spec, image, config, network
        self.secrets, self.claims = secrets, claims
        self.containers: list[str] = []

    def docker_run(self, container: dict[str, Any], env: dict[str, str] | None = None) -> list[str]:
        pod_security, security = self.spec["securityContext"], container["securityContext"]
        args = [
            "--network",
            self.network,
            "--user",
            f"{pod_security['runAsUser']}:{pod_security['runAsGroup']}",
            "--group-add",
            str(pod_security["fsGroup"]),
        ]
        if security["readOnlyRootFilesystem"]:
            args.append("--read-only")
        for capability in security["capabilities"]["drop"]:
            args += ["--cap-drop", capability]
        if security["allowPrivilegeEscalation"] is False:
            args += ["--security-opt", "no-new-privileges"]
        limits = container["resources"]["limits"]
        args += ["--cpus", limits["cpu"], "--memory", f"{quantity_mib(limits['memory'])}m"]
        variables = {}
        for source in container.get("envFrom", []):
            assert source["configMapRef"]["name"] == self.config["name"]
            variables.update(self.config["data"])
        variables.update({e["name"]: e["value"] for e in container.get("env", [])})
        variables.update(env or {})
        for name, value in variables.items():
            args += ["--env", f"{name}={value}"]
        volumes = {v["name"]: v for v in self.spec["volumes"]}
        for mount in container["volumeMounts"]:
            volume, path = volumes[mount["name"]], mount["mountPath"]
            if "emptyDir" in volume:
                size = quantity_mib(volume["emptyDir"]["sizeLimit"])
                args += ["--tmpfs", f"{path}:size={size}m"]
            elif "persistentVolumeClaim" in volume:
                claim = self.claims[volume["persistentVolumeClaim"]["claimName"]]
                args += ["--volume", f"{claim}:{path}"]
            else:
                secret = self.secrets[volume["secret"]["secretName"]]
                args += ["--volume", f"{secret}:{path}:ro"]
        # command replaces the image's ENTRYPOINT and drops its CMD, as in Kubernetes.
        command = container.get("command", [])
        if command:
            args += ["--entrypoint", command[0]]
        return [*args, self.image, *command[1:], *container.get("args", [])]

    def run_to_completion(
        self, container: dict[str, Any], env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return run(
            ["docker", "run", "--rm", *self.docker_run(container, env)], check=False, timeout=300
        )

    def start(self, container: dict[str, Any]) -> str:
        container_id = run(["docker", "run", "--detach", *self.docker_run(container)]).stdout
        self.containers.append(container_id.strip())
        return container_id.strip()

    def remove(self) -> None:
        for container_id in self.containers:
            subprocess.run(["docker", "rm", "--force", container_id], capture_output=True)


def http_probe(ip: str, port: int, probe: dict[str, Any]) -> bool:
    """One kubelet HTTP probe: success is a status from 200 to 399 within timeoutSeconds."""
    get = probe["httpGet"]
    headers = {h["name"]: h["value"] for h in get.get("httpHeaders", [])}
    request = urllib.request.Request(f"http://{ip}:{port}{get['path']}", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=probe["timeoutSeconds"]) as response:
            return 200 <= response.status < 400
    except urllib.error.HTTPError as error:
        return 200 <= error.code < 400
    except OSError:
        return False


def wait_for_probe(ip: str, port: int, probe: dict[str, Any], attempts: int) -> float:
    """Probe every periodSeconds until one succeeds; fail after `attempts`."""
    start = time.monotonic()
    for _ in range(attempts):
        if http_probe(ip, port, probe):
            return time.monotonic() - start
        time.sleep(probe["periodSeconds"])
    raise AssertionError(f"{probe['httpGet']['path']} failed {attempts} times")


@pytest.fixture(
    scope="module",
    params=[
        pytest.param(a, id=docker_id(a), marks=pytest.mark.xdist_group(f"k8s-{docker_id(a)}"))
        for a in DOCKER_SETS
    ],
)
def k8s_built(
    request: pytest.FixtureRequest, work_dir: Path, docker: None
) -> tuple[dict[str, Any], Path, str]:
    answers = request.param
    project = render(answers, work_dir)
    if not image_exists(base := base_image(project)):
        pytest.skip(f"no local image {base}")
    tag = f"fdt-test/k8s-{docker_id(answers)}"
    build(project, tag)
    return answers, project, tag


@pytest.mark.docker
def test_containers_run_as_their_manifests_specify_from_migration_to_shutdown(
    k8s_built: tuple[dict[str, Any], Path, str], tmp_path: Path
) -> None:
    answers, project, tag = k8s_built
    objs = objects(project, "prod")
    deployment, job = one(objs, "Deployment"), maybe(objs, "Job")
    config_map = one(objs, "ConfigMap")
    config = {"name": config_map["metadata"]["name"], "data": config_map["data"]}
    pod_spec = deployment["spec"]["template"]["spec"]
    app = pod_spec["containers"][0]
    port = app["ports"][0]["containerPort"]
    assert {c["image"] for c in pod_spec["containers"]} == {
        f"registry.example.com/{project_slug(project)}:0.1.0"
    }
    suffix = uuid.uuid4().hex[:8]
    network = f"fdt-k8s-{suffix}"
    secrets_dir = tmp_path / "secret"
    secrets_dir.mkdir(mode=0o755)
    (secrets_dir / "password").write_text(DATABASE_PASSWORD)
    (secrets_dir / "password").chmod(0o444)
    secrets = {f"{project_slug(project)}-database": secrets_dir}
    claims = {n: f"fdt-k8s-{n}-{suffix}" for k, n in objs if k == "PersistentVolumeClaim"}
    database = answers["migrations"] and answers["database"] == "postgresql"
    run(["docker", "network", "create", network])
    cleanup: list[list[str]] = [["docker", "network", "rm", network]]
    cleanup += [["docker", "volume", "rm", "--force", v] for v in claims.values()]
    pods: list[Pod] = []
    try:
        if database:
            cleanup.insert(
                0, ["docker", "rm", "--force", "--volumes", start_postgres(network, config)]
            )
        pod = Pod(pod_spec, tag, config, network, secrets, claims)
        pods.append(pod)
        init = pod_spec.get("initContainers", [])
        if job:
            # Before the Job, the schema is not at head: the wait gives up, nothing serves.
            early = pod.run_to_completion(init[0], {"DATABASE_WAIT_SECONDS": "3"})
            assert early.returncode != 0, early.stdout + early.stderr
            output = early.stdout + early.stderr  # log lines on stdout (LOG_FORMAT)
            assert "did not reach revision" in output, output
            assert "Traceback" not in output and DATABASE_PASSWORD not in output
            job_spec = job["spec"]["template"]["spec"]
            migration = Pod(job_spec, tag, config, network, secrets, claims)
            result = migration.run_to_completion(job_spec["containers"][0])
            assert result.returncode == 0, result.stdout + result.stderr
        for container in init:  # in order, each to completion
            result = pod.run_to_completion(container)
            assert result.returncode == 0, f"{container['name']}: {result.stdout}{result.stderr}"
        app_id = pod.start(app)
        ip = container_ip(app_id)
        startup = app["startupProbe"]
        try:
            wait_for_probe(ip, port, startup, startup["failureThreshold"])
        except AssertionError as error:
            logs = run(["docker", "logs", app_id], check=False)
            raise AssertionError(f"{error}\n{logs.stdout}{logs.stderr}") from None
        wait_for_probe(ip, port, app["readinessProbe"], 10)
        assert http_probe(ip, port, app["livenessProbe"])
        if answers["process_model"] != "uvicorn":
            table = process_table(app_id)
            server = next(r for r in table if re.search(r"bin/(gunicorn|uvicorn) ", r["cmdline"]))
            workers = [r["cmdline"] for r in table if r["ppid"] == server["pid"]]
            # One worker per CPU of the limit, under the server's supervisor.
            assert len(workers) == int(app["resources"]["limits"]["cpu"]), table
        shutdown = shut_down_like_the_kubelet(app_id, ip, port, app, pod_spec)
        logs = run(["docker", "logs", app_id], check=False)
        assert shutdown["failures"] == [], logs.stdout + logs.stderr
        assert shutdown["answered"] > 0
        assert shutdown["in_flight_status"] in (201, 422), shutdown
        assert shutdown["exit_code"] == 0, logs.stdout + logs.stderr
        assert (
            shutdown["sigterm_to_exit"]
            < pod_spec["terminationGracePeriodSeconds"]
            - (app["lifecycle"]["preStop"]["sleep"]["seconds"])
        ), "SIGKILL would have come first"
        assert DATABASE_PASSWORD not in logs.stdout + logs.stderr
    finally:
        for pod in pods:
            pod.remove()
        for command in cleanup:
            subprocess.run(command, capture_output=True)


def start_postgres(network: str, config: dict[str, Any]) -> str:
    """PostgreSQL where the ConfigMap says it is (DATABASE_HOST), with the Secret's password."""
    settings = config["data"]
    db = run(
        [
            "docker", "run", "--detach", "--network", network,
            "--network-alias", settings["DATABASE_HOST"],
            "--env", f"POSTGRES_USER={settings['DATABASE_USER']}",
            "--env", f"POSTGRES_DB={settings['DATABASE_NAME']}",
            "--env", f"POSTGRES_PASSWORD={DATABASE_PASSWORD}",
            "postgres:17",
        ]
    ).stdout.strip()  # fmt: skip
    deadline = time.monotonic() + 180
    while run(["docker", "exec", db, "pg_isready", "-h", "127.0.0.1"], check=False).returncode:
        assert time.monotonic() < deadline, "postgres did not start"
        time.sleep(1)
    return db


@pytest.mark.docker
def test_pods_started_together_migrate_once_under_the_lock(
    k8s_built: tuple[dict[str, Any], Path, str], tmp_path: Path
) -> None:
    """PostgreSQL with migration_step entrypoint: three pods' migrate initContainers at
    once leave one alembic_version row, at head."""
    answers, project, tag = k8s_built
    if not (answers.get("database") == "postgresql" and answers["migration_step"] == "entrypoint"):
        pytest.skip("only where every pod migrates PostgreSQL itself")
    objs = objects(project, "prod")
    config_map = one(objs, "ConfigMap")
    config = {"name": config_map["metadata"]["name"], "data": config_map["data"]}
    pod_spec = one(objs, "Deployment")["spec"]["template"]["spec"]
    (migrate,) = pod_spec["initContainers"]
    secret = tmp_path / "secret"
    secret.mkdir(mode=0o755)
    (secret / "password").write_text(DATABASE_PASSWORD)
    network = f"fdt-k8s-{uuid.uuid4().hex[:8]}"
    run(["docker", "network", "create", network])
    pods = [
        Pod(pod_spec, tag, config, network, {f"{project_slug(project)}-database": secret}, {})
        for _ in range(3)
    ]
    db = ""
    try:
        db = start_postgres(network, config)
        started = [pod.start(migrate) for pod in pods]
        codes = [run(["docker", "wait", c], timeout=120).stdout.strip() for c in started]
        logs = [run(["docker", "logs", c], check=False).stderr for c in started]
        assert codes == ["0", "0", "0"], logs
        user, database = config["data"]["DATABASE_USER"], config["data"]["DATABASE_NAME"]
        command = ["docker", "exec", db, *alembic_versions_command(user, database)]
        rows = run(command).stdout.split()
        assert rows == [head_revision(project)], rows
    finally:
        for pod in pods:
            pod.remove()
        if db:
            subprocess.run(["docker", "rm", "--force", "--volumes", db], capture_output=True)
        subprocess.run(["docker", "network", "rm", network], capture_output=True)


def shut_down_like_the_kubelet(
    container: str, ip: str, port: int, app: dict[str, Any], pod_spec: dict[str, Any]
) -> dict[str, Any]:
    """The preStop sleep under a bounded load (the pod still serves while its endpoint is
    removed), then SIGTERM with one request in flight, then SIGKILL at the grace period."""
    pre_stop = app["lifecycle"]["preStop"]["sleep"]["seconds"]
    grace = pod_spec["terminationGracePeriodSeconds"]
    sending = threading.Event()
    sending.set()
    failures: list[str] = []
    answered = 0

    def load() -> None:
        nonlocal answered
        while sending.is_set():
            request = urllib.request.Request(
                f"http://{ip}:{port}/healthz", headers={"Host": "localhost"}
            )
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    answered += response.status == 200
            except OSError as error:
                failures.append(repr(error))
            time.sleep(0.02)

    def in_flight() -> int:
        body = b'{"name": ""}'
        with socket.create_connection((ip, port), timeout=15) as connection:
            connection.sendall(
                b"POST /items/ HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body[:5]
            )
            time.sleep(pre_stop + 1)  # SIGTERM comes while the body is still arriving
            connection.sendall(body[5:])
            return int(connection.makefile("rb").readline().split()[1])

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        clients = [pool.submit(load) for _ in range(3)]
        slow = pool.submit(in_flight)
        time.sleep(pre_stop)  # the preStop sleep: requests keep coming and are answered
        sending.clear()  # the endpoint is gone everywhere: no new requests
        for client in clients:
            client.result()
        sigterm = time.monotonic()
        run(["docker", "kill", "--signal", "TERM", container])
        exited = subprocess.run(
            ["docker", "wait", container], capture_output=True, text=True, timeout=grace - pre_stop
        )
        sigterm_to_exit = time.monotonic() - sigterm
        in_flight_status = slow.result()
    return {
        "failures": failures,
        "answered": answered,
        "in_flight_status": in_flight_status,
        "exit_code": int(exited.stdout.strip()),
        "sigterm_to_exit": sigterm_to_exit,
    }
