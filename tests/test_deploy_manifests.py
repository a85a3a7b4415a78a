"""deploy/ (issue 16): the `serve --workers` topology for real deployments, validated as YAML with the fields each
kind needs and their cross-references (labels, ports, names, the cookie affinity, the health paths).

deploy/compose: N replicas of the project's image behind HAProxy with cookie affinity (its haproxy.cfg is checked
by `haproxy -c` where haproxy is installed; under CI=true, where `make test` installs it, it must be).
deploy/kubernetes: Deployment, Service, Ingress (ingress-nginx cookie affinity), HorizontalPodAutoscaler on CPU,
tied together by a kustomization (rendered by `kubectl kustomize` where kubectl is installed).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from llmcap.cli import workers

REPO = Path(__file__).resolve().parents[1]
COMPOSE = REPO / "deploy" / "compose"
K8S = REPO / "deploy" / "kubernetes"
IN_CI = os.environ.get("CI", "").lower() not in ("", "0", "false", "no")
HEALTH = "/_stcore/health"
APP_PORT = 8501  # the Dockerfile's EXPOSE and serve --port
IMAGE = "llmcap"  # the README's `docker build -t llmcap .`


def _load(path: Path) -> list[dict]:
    docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
    assert docs and all(isinstance(d, dict) for d in docs), path
    return docs


def _kubernetes() -> dict[str, dict]:
    """kind -> the one object of that kind, from the files the kustomization lists."""
    kustomization = _load(K8S / "kustomization.yaml")[0]
    objects: dict[str, dict] = {}
    for name in kustomization["resources"]:
        for doc in _load(K8S / name):
            assert doc["kind"] not in objects, f"two {doc['kind']} objects"
            objects[doc["kind"]] = doc
    return objects


def _dig(doc: dict, dotted: str):
    node = doc
    for key in dotted.split("."):
        assert isinstance(node, dict) and key in node, f"{doc.get('kind')} lacks {dotted}"
        node = node[key]
    return node


# --- Compose ------------------------------------------------------------------------------------------------------


def test_the_compose_file_runs_replicas_of_the_image_behind_the_proxy():
    compose = _load(COMPOSE / "compose.yaml")[0]
    services = compose["services"]
    assert set(services) == {"app", "proxy"}
    app, proxy = services["app"], services["proxy"]
    assert app["image"].split(":")[0] == IMAGE
    assert (COMPOSE / app["build"]["context"] / app["build"].get("dockerfile", "Dockerfile")).resolve().is_file()
    assert app["deploy"]["replicas"] >= 2
    assert str(APP_PORT) in [str(p) for p in app["expose"]] and "ports" not in app  # only the proxy is published
    assert proxy["image"].startswith("haproxy:")
    assert proxy["depends_on"]["app"]["condition"] == "service_healthy"


def test_the_compose_services_have_ports_and_healthchecks():
    services = _load(COMPOSE / "compose.yaml")[0]["services"]
    published = [str(p) for p in services["proxy"]["ports"]]
    assert published and all(p.split(":")[-1] == "8080" for p in published), published
    for name, service in services.items():
        check = service["healthcheck"]
        assert check["test"][0] == "CMD" and len(check["test"]) > 1, name
        assert {"interval", "timeout", "retries"} <= set(check), name
    assert HEALTH in " ".join(services["app"]["healthcheck"]["test"])
    assert "http://127.0.0.1:8080/healthz" in services["proxy"]["healthcheck"]["test"]


def test_the_compose_proxy_keeps_a_session_on_one_container():
    proxy = _load(COMPOSE / "compose.yaml")[0]["services"]["proxy"]
    mount = next(v for v in proxy["volumes"] if v.endswith("haproxy.cfg:ro"))
    config = (COMPOSE / mount.split(":")[0]).resolve()
    assert config == COMPOSE / "haproxy.cfg"
    text = config.read_text(encoding="utf-8")
    assert f"cookie {workers.COOKIE} insert" in text and "dynamic-cookie-key" in text
    assert f"server-template app 1-8 app:{APP_PORT}" in text
    assert f"option httpchk GET {HEALTH}" in text and "path /healthz" in text
    assert "bind :8080" in text and "timeout tunnel" in text


def test_the_compose_proxy_configuration_is_valid_haproxy():
    haproxy = workers.find_haproxy()
    if haproxy is None:
        if IN_CI:
            pytest.fail("CI=true but no haproxy; `make test` installs it (`make proxy`)")
        pytest.skip("no haproxy: apt-get install -y haproxy")
    out = subprocess.run([haproxy, "-c", "-f", str(COMPOSE / "haproxy.cfg")], capture_output=True, text=True,
                         timeout=30)  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr


# --- Kubernetes ---------------------------------------------------------------------------------------------------


REQUIRED = {
    "Deployment": ("apps/v1", ["spec.selector.matchLabels", "spec.template.metadata.labels",
                               "spec.template.spec.containers"]),
    "Service": ("v1", ["spec.selector", "spec.ports"]),
    "Ingress": ("networking.k8s.io/v1", ["spec.ingressClassName", "spec.rules", "metadata.annotations"]),
    "HorizontalPodAutoscaler": ("autoscaling/v2", ["spec.scaleTargetRef", "spec.minReplicas", "spec.maxReplicas",
                                                   "spec.metrics"]),
}  # fmt: skip


def test_each_kubernetes_object_has_its_required_fields():
    objects = _kubernetes()
    assert set(objects) == set(REQUIRED)
    for kind, (api, fields) in REQUIRED.items():
        doc = objects[kind]
        assert doc["apiVersion"] == api, kind
        assert doc["metadata"]["name"] == "llmcap", kind
        for field in fields:
            assert _dig(doc, field), f"{kind}.{field} is empty"


def test_the_deployment_runs_the_image_with_health_probes_and_cpu_requests():
    deployment = _kubernetes()["Deployment"]
    spec = deployment["spec"]
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    assert "replicas" not in spec  # the HPA owns the count
    (container,) = spec["template"]["spec"]["containers"]
    assert container["image"].split(":")[0] == IMAGE
    images = _load(K8S / "kustomization.yaml")[0]["images"]
    assert [i["name"] for i in images] == [container["image"]]
    assert [p["containerPort"] for p in container["ports"]] == [APP_PORT]
    port_names = {p["name"] for p in container["ports"]}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] == HEALTH, probe
        assert container[probe]["httpGet"]["port"] in port_names | {APP_PORT}, probe
    assert container["resources"]["requests"]["cpu"]  # the HPA's utilization is measured against it
    assert spec["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


def test_the_service_selects_the_deployments_pods_on_its_port():
    objects = _kubernetes()
    service, deployment = objects["Service"], objects["Deployment"]
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    targets = {p["name"] for p in container["ports"]} | {p["containerPort"] for p in container["ports"]}
    assert all(p["targetPort"] in targets for p in service["spec"]["ports"])


def test_the_ingress_keeps_a_session_on_one_pod_and_routes_to_the_service():
    objects = _kubernetes()
    ingress, service = objects["Ingress"], objects["Service"]
    notes = ingress["metadata"]["annotations"]
    assert notes["nginx.ingress.kubernetes.io/affinity"] == "cookie"
    assert notes["nginx.ingress.kubernetes.io/affinity-mode"] == "persistent"
    assert notes["nginx.ingress.kubernetes.io/session-cookie-name"] == workers.COOKIE
    assert int(notes["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600  # an idle WebSocket lives on
    assert ingress["spec"]["ingressClassName"] == "nginx"
    backends = [p["backend"]["service"] for r in ingress["spec"]["rules"] for p in r["http"]["paths"]]
    assert backends and all(b["name"] == service["metadata"]["name"] for b in backends)
    service_ports = {p["name"] for p in service["spec"]["ports"]} | {p["port"] for p in service["spec"]["ports"]}
    assert all((b["port"].get("name") or b["port"].get("number")) in service_ports for b in backends)


def test_the_autoscaler_scales_the_deployment_on_cpu():
    objects = _kubernetes()
    hpa, deployment = objects["HorizontalPodAutoscaler"], objects["Deployment"]
    ref = hpa["spec"]["scaleTargetRef"]
    assert (ref["apiVersion"], ref["kind"], ref["name"]) == ("apps/v1", "Deployment", deployment["metadata"]["name"])
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    (metric,) = hpa["spec"]["metrics"]
    assert metric["type"] == "Resource" and metric["resource"]["name"] == "cpu"
    assert 0 < metric["resource"]["target"]["averageUtilization"] <= 100


def test_kubectl_renders_the_kustomization():
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("no kubectl here: the YAML checks above stand")
    out = subprocess.run([kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    kinds = sorted(d["kind"] for d in yaml.safe_load_all(out.stdout) if d)
    assert kinds == sorted(REQUIRED)
