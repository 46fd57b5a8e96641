"""The deployment files (infra/docker-compose.yml, infra/k8s/*.yaml) name only roles, settings, labels and
paths that exist. There is no Docker engine or Kubernetes here: parsing them is their validation."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from pydantic import ValidationError

from ingest.app import create_app
from ingest.publisher import KafkaPublisher, create_producer
from mailpulse.cli import build_parser
from mailpulse.health import health_app
from mailpulse.runtime import processor
from mailpulse.settings import Settings
from mailpulse.topics import ensure_topics
from processors.store import ClickHouseStore

INFRA = Path(__file__).resolve().parents[2] / "infra"
COMPOSE = INFRA / "docker-compose.yml"
DOCKERFILE = INFRA / "Dockerfile"
K8S = INFRA / "k8s"
ROLES = {"ingest", "process", "poll", "alerts", "dashboard", "migrate"}  # issue 7's roles
IN_PROGRESS = {"alerts", "dashboard"}  # subcommands other engineers are writing: skipped until they land
IMAGE = "mailpulse:latest"
SETTING = re.compile(r"\bMAILPULSE_[A-Z0-9_]+\b")

Doc = dict[str, Any]


@dataclass
class Container:
    """One mailpulse container of a k8s workload or a compose service, as far as these checks go."""

    where: str  # file and object, for messages
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    ports: dict[str | int, int] = field(default_factory=dict)  # by name and by number
    probes: list[Doc] = field(default_factory=list)
    env_from: set[tuple[str, str]] = field(default_factory=set)  # (ConfigMap or Secret, name)

    @property
    def role(self) -> str | None:
        """The subcommand of `mailpulse <role>`; None when the container runs something else."""
        if not self.argv or Path(self.argv[0]).name != "mailpulse":
            return None
        return next((a for a in self.argv[1:] if not a.startswith("-")), None)


def _entrypoint() -> list[str]:
    for line in DOCKERFILE.read_text().splitlines():
        if line.startswith("ENTRYPOINT "):
            argv: list[str] = json.loads(line.removeprefix("ENTRYPOINT "))
            return argv
    raise AssertionError(f"{DOCKERFILE} has no exec-form ENTRYPOINT")


def image_env() -> dict[str, str]:
    """The image's ENV lines (KEY=value form): every container starts with them."""
    env: dict[str, str] = {}
    for line in DOCKERFILE.read_text().splitlines():
        if line.startswith("ENV "):
            for pair in line.removeprefix("ENV ").split():
                key, value = pair.split("=", 1)
                env[key] = value
    return env


def k8s_files() -> list[Path]:
    return sorted(K8S.glob("*.yaml"))


def k8s_docs() -> list[tuple[str, Doc]]:
    return [
        (f"{path.name}:{doc['kind']}/{doc['metadata']['name']}", doc)
        for path in k8s_files()
        if path.name != "kustomization.yaml"
        for doc in yaml.safe_load_all(path.read_text())
        if doc is not None
    ]


def of_kind(kind: str) -> list[tuple[str, Doc]]:
    return [(where, doc) for where, doc in k8s_docs() if doc["kind"] == kind]


def pod_specs() -> Iterator[tuple[str, Doc]]:
    for where, doc in k8s_docs():
        if doc["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            yield where, doc["spec"]["template"]["spec"]


def k8s_containers() -> list[Container]:
    out = []
    for where, spec in pod_specs():
        for c in spec.get("initContainers", []) + spec["containers"]:
            ports: dict[str | int, int] = {}
            for p in c.get("ports", []):
                ports[p["containerPort"]] = p["containerPort"]
                if "name" in p:
                    ports[p["name"]] = p["containerPort"]
            probes = [c[k] for k in ("readinessProbe", "livenessProbe", "startupProbe") if k in c]
            argv = list(c.get("command") or _entrypoint()) + list(c.get("args", []))
            env = {e["name"]: str(e.get("value", "")) for e in c.get("env", [])}
            env_from = {
                (kind, source[ref]["name"])
                for source in c.get("envFrom", [])
                for ref, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret"))
                if ref in source
            }
            out.append(Container(f"{where}:{c['name']}", argv, env, ports, probes, env_from))
    return out


def compose() -> Doc:
    loaded: Doc = yaml.safe_load(COMPOSE.read_text())
    return loaded


def compose_containers() -> list[Container]:
    """The services built from infra/Dockerfile (the others run third-party images)."""
    out = []
    for name, service in compose()["services"].items():
        if service.get("build", {}).get("dockerfile") != "infra/Dockerfile":
            continue
        entrypoint = service.get("entrypoint") or _entrypoint()
        env = {k: interpolated(str(v)) for k, v in (service.get("environment") or {}).items()}
        out.append(Container(f"compose:{name}", [*entrypoint, *service.get("command", [])], env))
    return out


_INTERPOLATION = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::?-([^}]*)|:?\?[^}]*)?\}")


def interpolated(value: str) -> str:
    """The value compose passes when the variable is unset: its `:-` default, else an operator's value."""
    return _INTERPOLATION.sub(lambda m: m.group(1) if m.group(1) is not None else "set-by-operator", value)


def subcommands() -> set[str]:
    actions = build_parser()._actions
    return {name for a in actions if isinstance(a, argparse._SubParsersAction) for name in a.choices}


def k8s_settings() -> dict[str, str]:
    """What every pod's envFrom gives it: the ConfigMap's data and the Secret's (template) data."""
    values: dict[str, str] = {}
    for _, doc in of_kind("ConfigMap") + of_kind("Secret"):
        values.update({k: str(v) for k, v in (doc.get("data") or doc.get("stringData") or {}).items()})
    return values


def settings_from(env: Mapping[str, str]) -> Settings:
    """Settings as a process with this environment and no .env file reads them (values as strings, as
    from the environment; ``_no_outside_settings`` keeps this test's own environment out)."""
    fields: dict[str, Any] = {
        k.removeprefix("MAILPULSE_").lower(): v for k, v in env.items() if k.startswith("MAILPULSE_")
    }
    return Settings(_env_file=None, **fields)


@pytest.fixture(autouse=True)
def _no_outside_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("MAILPULSE_")]:
        monkeypatch.delenv(name)


def test_kustomization_lists_every_manifest_and_every_object_is_named() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    manifests = {p.name for p in k8s_files()} - {"kustomization.yaml"}
    assert sorted(kustomization["resources"]) == sorted(manifests)
    seen: set[tuple[str, str]] = set()
    for where, doc in k8s_docs():
        assert doc.get("apiVersion") and doc.get("kind"), where
        key = (doc["kind"], doc["metadata"]["name"])
        assert key not in seen, f"{where} defined twice"
        seen.add(key)


def test_every_role_runs_in_compose_and_in_kubernetes() -> None:
    in_compose = {c.role for c in compose_containers()}
    in_k8s = {c.role for c in k8s_containers()}
    assert None not in in_compose | in_k8s, "a mailpulse container runs no `mailpulse <role>`"
    assert ROLES - in_compose == set(), "roles missing from docker-compose.yml"
    assert ROLES - in_k8s == set(), "roles missing from infra/k8s"
    assert in_compose == in_k8s, "compose and k8s run different roles"


def _roles() -> list[str]:
    return sorted(ROLES | {c.role for c in compose_containers() + k8s_containers() if c.role})


@pytest.mark.parametrize("role", _roles())
def test_role_is_a_mailpulse_subcommand(role: str) -> None:
    if role not in subcommands() and role in IN_PROGRESS:
        pytest.skip(f"`mailpulse {role}` is being written (issue 6); this check is live once it lands")
    assert role in subcommands(), f"`mailpulse {role}` is run by a deployment file but does not exist"


def test_every_mailpulse_variable_named_is_a_setting() -> None:
    unknown = {
        f"{path.relative_to(INFRA)}: {name}"
        for path in [COMPOSE, DOCKERFILE, *k8s_files()]
        for name in SETTING.findall(path.read_text())
        if name.removeprefix("MAILPULSE_").lower() not in Settings.model_fields
    }
    # Settings ignore unknown variables (extra="ignore"): a misspelt one would be silently without effect.
    assert sorted(unknown) == []


def test_the_configured_values_are_valid_settings() -> None:
    problems = []
    environments = [("k8s ConfigMap + Secret", {**image_env(), **k8s_settings()})]
    for c in k8s_containers():
        environments.append((c.where, {**image_env(), **k8s_settings(), **c.env}))
    for c in compose_containers():
        environments.append((c.where, {**image_env(), **c.env}))
    for where, env in environments:
        try:
            settings_from(env)
        except ValidationError as exc:
            problems.append(f"{where}: {exc}")
    assert problems == []


def test_every_container_reads_the_configmap_and_secret_that_exist() -> None:
    defined = {
        (kind, doc["metadata"]["name"]) for kind in ("ConfigMap", "Secret") for _, doc in of_kind(kind)
    }
    for c in k8s_containers():
        # k8s_settings() assumes every pod gets all of them.
        assert c.env_from == defined, c.where


def test_every_container_runs_the_image_with_requests_and_limits() -> None:
    for where, spec in pod_specs():
        for c in spec["containers"]:
            assert c["image"] == IMAGE, where
            for kind in ("requests", "limits"):
                assert set(c.get("resources", {}).get(kind, {})) == {"cpu", "memory"}, f"{where} {kind}"


def test_services_select_the_pods_of_one_deployment_on_a_declared_port() -> None:
    deployments = of_kind("Deployment")
    for where, dep in deployments:
        labels = dep["spec"]["template"]["metadata"]["labels"]
        assert dep["spec"]["selector"]["matchLabels"].items() <= labels.items(), where
    for where, service in of_kind("Service"):
        selector = service["spec"]["selector"]
        matched = [
            (w, d)
            for w, d in deployments
            if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(matched) == 1, f"{where} selects {[w for w, _ in matched]}"
        pods = [c for c in k8s_containers() if c.where.startswith(matched[0][0])]
        for port in service["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            assert any(target in c.ports for c in pods), f"{where}: no container port {target}"


def test_roles_with_one_instance_and_graceful_shutdown() -> None:
    replicas = {d["metadata"]["name"]: d["spec"]["replicas"] for _, d in of_kind("Deployment")}
    assert replicas["mailpulse-process"] >= 2  # scalable: one consumer group
    # One poller (its checkpoint is a local file) and one alerter (each alert fires once).
    assert replicas["mailpulse-poll"] == replicas["mailpulse-alerts"] == 1
    specs = {where.split(":")[1]: spec for where, spec in pod_specs()}
    ingest = specs["Deployment/mailpulse-ingest"]
    assert "preStop" in ingest["containers"][0]["lifecycle"]
    publish_timeout_s = settings_from(k8s_settings()).publish_timeout_s
    assert ingest["terminationGracePeriodSeconds"] > 5 + publish_timeout_s
    assert specs["Deployment/mailpulse-process"]["terminationGracePeriodSeconds"] >= 30


def http_probes() -> list[tuple[Container, str, int]]:
    """(container, path, port number) of every httpGet probe; the port must be one the container declares."""
    out = []
    for c in k8s_containers():
        for probe in c.probes:
            if "httpGet" in probe:
                port = probe["httpGet"]["port"]
                assert port in c.ports, f"{c.where}: probe on undeclared port {port}"
                out.append((c, probe["httpGet"]["path"], c.ports[port]))
    return out


def test_probes_hit_the_port_the_role_listens_on() -> None:
    settings = settings_from(k8s_settings())
    listens = {"ingest": settings.ingest_port, "process": settings.metrics_port}
    probed = {c.role for c, _, _ in http_probes()}
    assert {"ingest", "process"} <= probed
    for c, path, port in http_probes():
        assert c.role in listens, f"{c.where}: no app known to serve {path} for `mailpulse {c.role}`"
        assert port == listens[c.role], f"{c.where}: probes {port}, the role listens on {listens[c.role]}"


@pytest.mark.kafka
@pytest.mark.clickhouse
def test_probe_paths_are_served_by_the_roles_apps(settings: Settings, store: ClickHouseStore) -> None:
    """GET every probe path on the real app of its role (ingest, and the process role's health app)."""
    assert settings.kafka_bootstrap is not None
    bootstrap = settings.kafka_bootstrap
    wanted = {(c.role, path) for c, path, _ in http_probes()}

    async def get(app: Any, path: str) -> int:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://probe", timeout=30) as client:
            return (await client.get(path)).status_code

    async def scenario() -> dict[tuple[str | None, str], int]:
        await ensure_topics(bootstrap, settings.topics, settings.partitions)
        answers: dict[tuple[str | None, str], int] = {}
        producer = create_producer(bootstrap, enable_idempotence=False)
        await producer.start()
        try:
            publisher = KafkaPublisher(
                producer, settings.status_topic, settings.deadletter_topic, settings.publish_timeout_s
            )
            ingest = create_app(publisher)
            for role, path in wanted:
                if role == "ingest":
                    answers[role, path] = await get(ingest, path)
        finally:
            await producer.stop()
        async with processor(settings, bootstrap, store) as proc:
            for role, path in wanted:
                if role == "process":
                    answers[role, path] = await get(health_app(proc), path)
        return answers

    answers = asyncio.run(scenario())
    assert set(answers) == wanted
    assert answers == dict.fromkeys(wanted, 200)


def test_grafana_provisions_the_dashboards_directory_it_mounts() -> None:
    grafana = compose()["services"]["grafana"]
    mounts = dict(v.split(":")[:2] for v in grafana["volumes"])
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"
    provider = yaml.safe_load((INFRA / "grafana/provisioning/dashboards/mailpulse.yml").read_text())
    paths = {p["options"]["path"] for p in provider["providers"]}
    assert paths == {"/var/lib/grafana/dashboards"}
    assert mounts["./grafana/dashboards"] in paths
