"""Kubernetes manifests (deploy/k8s), validated offline against the Kubernetes JSON schemas
shipped by kubernetes-validate (strict: unknown fields are errors), and checked against the
compose file, the real CLI and the real settings class.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from newswire.settings import Settings
from tests.test_deploy_compose import (
    SERVICE_COMMANDS,
    resolved_compose,
    settings_field,
)

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "k8s"
KUBERNETES_VERSION = "1.33"  # oldest minor still supported upstream when this was written
SECRET_EXAMPLE = "secret.example.yaml"
COMPONENTS = {"poller": "poll", "processor": "process", "indexer": "index", "web": "serve"}


def manifests(include_example: bool = True) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        if path.name == SECRET_EXAMPLE and not include_example:
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                out.append((path.name, doc))
    return out


def find(kind: str, name: str) -> dict[str, Any]:
    hits = [d for _, d in manifests() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(hits) == 1, f"{kind}/{name}: {len(hits)} found"
    return hits[0]


def deployment(component: str) -> dict[str, Any]:
    return find("Deployment", f"newswire-{component}")


def pod_env(component: str, container: dict[str, Any]) -> dict[str, str]:
    """The environment a container gets: ConfigMaps via envFrom, then env (secrets filled in
    with placeholder values, as if the example Secret were applied)."""
    secrets = {d["metadata"]["name"]: d for f, d in manifests() if d["kind"] == "Secret"}
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "secretRef" in source:  # every key of the example Secret becomes a variable
            example = secrets[source["secretRef"]["name"]]["stringData"]
            env.update({key: f"placeholder-{key}" for key in example})
            continue
        env.update(find("ConfigMap", source["configMapRef"]["name"])["data"])
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            assert ref["key"] in secrets[ref["name"]]["stringData"], ref
            env[item["name"]] = f"placeholder-{ref['key']}"
    return env


def test_every_manifest_is_valid_against_the_kubernetes_schemas() -> None:
    docs = manifests()
    assert len(docs) >= 12
    for filename, doc in docs:
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            name = f"{doc['kind']}/{doc['metadata']['name']}"
            pytest.fail(f"{filename}: {name}: {path}: {exc.message}")


def test_schema_check_rejects_a_broken_manifest() -> None:
    broken = copy.deepcopy(deployment("indexer"))
    container = broken["spec"]["template"]["spec"]["containers"][0]
    container["readinessProbe"]["httpGett"] = container["readinessProbe"].pop("httpGet")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)
    wrong_type = copy.deepcopy(deployment("indexer"))
    wrong_type["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(wrong_type, KUBERNETES_VERSION, strict=True)


def test_kustomization_lists_every_manifest_but_the_example_secret() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", SECRET_EXAMPLE}
    assert set(kustomization["resources"]) == files
    namespace = kustomization["namespace"]
    for _, doc in manifests():
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == namespace, doc["metadata"]["name"]
    assert find("Namespace", namespace)


def test_deployments_match_compose_image_and_commands() -> None:
    from newswire.cli import main

    compose = resolved_compose()["services"]
    for component, subcommand in COMPONENTS.items():
        assert SERVICE_COMMANDS[component] == subcommand
        spec = deployment(component)["spec"]["template"]["spec"]
        (container,) = spec["containers"]
        assert container["image"] == compose[component]["image"]
        # args, not command: the image's ENTRYPOINT (newswire) runs, as in compose.
        assert "command" not in container
        assert container["args"] == compose[component]["command"]
        assert subcommand in main.commands, f"`newswire {subcommand}` is not registered"
        main.commands[subcommand].make_context(subcommand, list(container["args"][1:]))
        # The topic init container runs the same code as compose's topic-init.
        (init,) = spec["initContainers"]
        assert init["image"] == container["image"]
        assert "command" not in init
        assert init["args"] == compose["topic-init"]["command"] == ["topics"]


@pytest.mark.parametrize("component", sorted(COMPONENTS))
def test_environment_builds_the_intended_settings(
    component: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    spec = deployment(component)["spec"]["template"]["spec"]
    container = spec["containers"][0]
    env = pod_env(component, container)
    for key in env:
        assert settings_field(key), f"{component}: {key} is not a field of newswire Settings"
    # Every setting compose gives this service is given here too (values differ: external
    # Kafka/Elasticsearch, API key instead of a password).
    compose_env = resolved_compose()["services"][component]["environment"]
    auth_alternatives = {"NEWSWIRE_SEARCH__USERNAME", "NEWSWIRE_SEARCH__PASSWORD"}
    # Pods share no disk: each keeps its per-host limits file in its own data dir (sharing per
    # node takes a hostPath volume, deploy/README.md), so the compose-only path is not set.
    per_pod = {"NEWSWIRE_FETCH__HOST_LIMITS_FILE"}
    missing = ({k for k in compose_env if k.startswith("NEWSWIRE_")} - set(env)
               - auth_alternatives - per_pod)
    assert not missing, f"{component}: settings set in compose but not in k8s: {sorted(missing)}"

    for key in [k for k in os.environ if k.startswith("NEWSWIRE_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = Settings()

    kafka = settings.kafka.client_config()
    assert kafka["security_protocol"] == "SASL_SSL" and kafka["sasl_plain_password"]
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}

    def mounted_from_secret(path: Path | None) -> bool:
        if path is None:
            return False
        mount = mounts.get(str(path.parent))
        if not mount or not mount.get("readOnly"):
            return False
        secret = volumes[mount["name"]]["secret"]["secretName"]
        return path.name in find("Secret", secret)["stringData"]

    assert mounted_from_secret(settings.kafka.ssl_cafile)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    annotations = deployment(component)["spec"]["template"]["metadata"]["annotations"]
    if component == "web":  # /metrics is a route of the web app itself
        assert settings.metrics_port == 0
        assert annotations["prometheus.io/port"] == str(ports["http"])
    else:
        assert ports["metrics"] == settings.metrics_port
        assert annotations["prometheus.io/port"] == str(settings.metrics_port)
    assert str(settings.data_dir) in mounts

    if component in ("processor", "indexer", "web"):
        assert settings.search.uses_elasticsearch
        assert (settings.search.elasticsearch_url or "").startswith("https://")
        assert settings.search.api_key is not None
        assert mounted_from_secret(settings.search.ca_certs)
    if component == "processor":
        # one extraction process per core the pod may use, not per core of the node
        cpu_limit = str(container["resources"]["limits"]["cpu"])
        cores = int(cpu_limit[:-1]) / 1000 if cpu_limit.endswith("m") else float(cpu_limit)
        assert 1 <= settings.process.workers <= max(1, int(cores))
    if component == "web":
        assert settings.web.host == "0.0.0.0" and settings.web.token is not None
        assert settings.web.cors_origins == []
        assert ports["http"] == settings.web.port
    if component == "poller":
        feeds = settings.feeds_file
        assert feeds is not None and str(feeds.parent) in mounts
        config = volumes[mounts[str(feeds.parent)]["name"]]["configMap"]["name"]
        listed = find("ConfigMap", config)["data"][feeds.name].split()
        assert listed == (ROOT / "deploy" / "feeds.txt").read_text().split()


@pytest.mark.parametrize("component", sorted(COMPONENTS))
def test_probes_resources_and_security(component: str) -> None:
    spec = deployment(component)["spec"]["template"]["spec"]
    container = spec["containers"][0]
    port_names = {p["name"] for p in container["ports"]}
    for probe in ("readinessProbe", "livenessProbe"):
        http = container[probe]["httpGet"]
        assert http["port"] in port_names, (component, probe)
        ready_web = component == "web" and probe == "readinessProbe"
        assert http["path"] == ("/healthz" if ready_web else "/metrics"), (component, probe)
    for c in (*spec["containers"], *spec["initContainers"]):
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(c["resources"][kind]), (c["name"], kind)
        sc = c["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"]["drop"] == ["ALL"]
    pod_sc = spec["securityContext"]
    assert pod_sc["runAsNonRoot"] is True and pod_sc["runAsUser"] != 0
    assert spec["automountServiceAccountToken"] is False


def test_scaling_respects_the_partition_plan() -> None:
    partitions = int(find("ConfigMap", "newswire-config")["data"]["NEWSWIRE_KAFKA__PARTITIONS"])
    # one poller (two would poll every feed twice), on Recreate so the volume moves cleanly
    poller = deployment("poller")["spec"]
    assert poller["replicas"] == 1 and poller["strategy"]["type"] == "Recreate"
    for component in ("processor", "indexer"):
        assert 1 <= deployment(component)["spec"]["replicas"] <= partitions
    hpa = find("HorizontalPodAutoscaler", "newswire-processor")["spec"]
    assert hpa["scaleTargetRef"]["name"] == "newswire-processor"
    assert hpa["maxReplicas"] <= partitions, "workers beyond the partition count sit idle"


def test_selectors_match_their_pods() -> None:
    for _, doc in manifests():
        if doc["kind"] == "PodDisruptionBudget":
            selector = doc["spec"]["selector"]["matchLabels"]
        elif doc["kind"] == "Service":
            selector = doc["spec"]["selector"]
        else:
            continue
        targets = [d for _, d in manifests() if d["kind"] == "Deployment" and
                   selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()]
        assert len(targets) == 1, f"{doc['kind']}/{doc['metadata']['name']} selects {len(targets)}"
        if doc["kind"] == "Service":
            container = targets[0]["spec"]["template"]["spec"]["containers"][0]
            names = {p["name"] for p in container["ports"]}
            assert all(p["targetPort"] in names for p in doc["spec"]["ports"])
    for component in COMPONENTS:
        d = deployment(component)["spec"]
        assert d["selector"]["matchLabels"].items() <= d["template"]["metadata"]["labels"].items()


def test_example_secret_ships_no_values() -> None:
    for filename, doc in manifests():
        if doc["kind"] == "Secret":
            assert filename == SECRET_EXAMPLE
            assert all(v == "" for v in doc["stringData"].values()), doc["metadata"]["name"]


def test_deploy_readme_documents_every_topic_and_file() -> None:
    from newswire.topics import TOPICS

    readme = (ROOT / "deploy" / "README.md").read_text()
    for spec in TOPICS:
        assert f"`{spec.name}`" in readme, f"deploy/README.md: topic {spec.name} not in the plan"
    for path in re.findall(r"`((?:k8s|kibana|compose)/[\w./-]+)`", readme):
        assert (ROOT / "deploy" / path).exists(), path
