"""The deployment files (infra/docker-compose.yml, infra/k8s/*.yaml) name only roles, settings, labels and
paths that exist; load with a loader that refuses duplicate keys; bind every server role to all
interfaces; take tokens and passwords from secrets; and, filled in as docs/operations.md tells an
operator, give every container a command the CLI parses and settings it starts with. There is no Docker
engine or Kubernetes here: the image's install is tested in test_image_installs.py."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args
from urllib.parse import urlsplit

import httpx
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import SecretStr, ValidationError

from adapters.clickhouse import ClickHouseStore
from adapters.publisher import KafkaPublisher, create_producer
from ingest.app import create_app
from mailpulse import cli
from mailpulse.cli import build_parser
from mailpulse.health import health_app
from mailpulse.redact import redact_dsn
from mailpulse.runtime import processor
from mailpulse.settings import Settings
from mailpulse.topics import ensure_topics
from schemas.signatures import public_key_b64

INFRA = Path(__file__).resolve().parents[2] / "infra"
COMPOSE = INFRA / "docker-compose.yml"
DOCKERFILE = INFRA / "Dockerfile"
K8S = INFRA / "k8s"
ROLES = {"ingest", "process", "poll", "alerts", "dashboard", "migrate"}  # the production roles
# The setting of the address each server role binds (mailpulse.runtime: the process, poll and alerts
# health/metrics ports bind the ingest host). In a container it must be all interfaces.
BIND_SETTING = {
    "ingest": "ingest_host",
    "process": "ingest_host",
    "poll": "ingest_host",
    "alerts": "ingest_host",
    "dashboard": "dashboard_host",
}
ALL_INTERFACES = {"0.0.0.0", "::"}
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
    env_refs: dict[str, Doc] = field(default_factory=dict)  # env taken from elsewhere (valueFrom)

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
        for doc in yaml.load_all(path.read_text(), StrictLoader)
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
            env = {e["name"]: str(e.get("value", "")) for e in c.get("env", []) if "valueFrom" not in e}
            refs = {e["name"]: e["valueFrom"] for e in c.get("env", []) if "valueFrom" in e}
            env_from = {
                (kind, source[ref]["name"])
                for source in c.get("envFrom", [])
                for ref, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret"))
                if ref in source
            }
            out.append(Container(f"{where}:{c['name']}", argv, env, ports, probes, env_from, refs))
    return out


class StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a mapping that repeats a key, as compose and kubectl do (PyYAML
    silently keeps the last one). Merge keys (`<<: *anchor`) may still be overridden."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                where = node.start_mark
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", where, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep)


def load_yaml(text: str) -> Any:
    return yaml.load(text, StrictLoader)


def compose() -> Doc:
    loaded: Doc = load_yaml(COMPOSE.read_text())
    return loaded


# What docs/operations.md tells an operator to provide (infra/.env) for compose: the required secrets,
# the poller's key (profile twilio), and the signature settings of ingest.
PUBLIC_KEY = public_key_b64(ec.generate_private_key(ec.SECP256R1()).public_key())
COMPOSE_SECRETS = {
    "CLICKHOUSE_PASSWORD": "ch-password-from-operator",
    "GRAFANA_ADMIN_PASSWORD": "grafana-password-from-operator",
    "MAILPULSE_API_TOKEN": "api-token-from-operator",
    "TWILIO_API_KEY_SID": "SK-from-operator",
    "TWILIO_API_KEY_SECRET": "key-secret-from-operator",
}
SIGNATURE_KEYS = {
    "MAILPULSE_SENDGRID_WEBHOOK_PUBLIC_KEY": PUBLIC_KEY,
    "MAILPULSE_SENDGRID_INBOUND_PUBLIC_KEY": PUBLIC_KEY,
    "MAILPULSE_TWILIO_AUTH_TOKEN": "twilio-auth-token-from-operator",
}
COMPOSE_SIGNED = {**COMPOSE_SECRETS, **SIGNATURE_KEYS}


def compose_containers(variables: Mapping[str, str] = COMPOSE_SIGNED) -> list[Container]:
    """The services built from infra/Dockerfile (the others run third-party images), their environment
    interpolated from ``variables`` as compose does."""
    out = []
    for name, service in compose()["services"].items():
        if service.get("build", {}).get("dockerfile") != "infra/Dockerfile":
            continue
        entrypoint = service.get("entrypoint") or _entrypoint()
        env = {k: interpolated(str(v), variables) for k, v in (service.get("environment") or {}).items()}
        out.append(Container(f"compose:{name}", [*entrypoint, *service.get("command", [])], env))
    return out


_INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def interpolated(value: str, variables: Mapping[str, str]) -> str:
    """``value`` as compose interpolates it: ${V}, ${V:-default}, ${V-default}, ${V:?error}, ${V?error}.
    A required variable missing from ``variables`` fails: compose would refuse to start."""

    def one(m: re.Match[str]) -> str:
        name, op, arg = m["name"], m["op"] or "", m["arg"] or ""
        given = variables.get(name)
        usable = given is not None and (given != "" or not op.startswith(":"))
        if op.endswith("?"):
            assert usable, f"compose needs {name}: {arg}"
        if usable:
            assert given is not None
            return given
        return arg if op.endswith("-") else ""

    return _INTERPOLATION.sub(one, value)


def subcommands() -> set[str]:
    actions = build_parser()._actions
    return {name for a in actions if isinstance(a, argparse._SubParsersAction) for name in a.choices}


def k8s_settings(filled: bool = True) -> dict[str, str]:
    """What every pod's envFrom gives it: the ConfigMap's data and the Secret's data; ``filled``: with
    every CHANGE_ME of the templates replaced, as an operator does."""
    values: dict[str, str] = {}
    for _, doc in of_kind("ConfigMap") + of_kind("Secret"):
        values.update({k: str(v) for k, v in (doc.get("data") or doc.get("stringData") or {}).items()})
    return {k: operator_value(k, v) for k, v in values.items()} if filled else values


def operator_value(name: str, template: str) -> str:
    """What an operator puts in place of a template's CHANGE_ME: a valid value for setting ``name``."""
    if "CHANGE_ME" not in template:
        return template
    if name in SIGNATURE_KEYS:
        return SIGNATURE_KEYS[name]
    return template.replace("CHANGE_ME", f"{name.lower()}-from-operator")


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


def test_the_loader_refuses_duplicate_keys_and_keeps_merge_keys() -> None:
    with pytest.raises(yaml.constructor.ConstructorError, match="duplicate key 'dashboard'"):
        load_yaml("services:\n  dashboard: {a: 1}\n  ingest: {}\n  dashboard: {b: 2}\n")
    merged = load_yaml("x: &base {a: 1, b: 2}\ny:\n  <<: *base\n  b: 3\n")
    assert merged["y"] == {"a": 1, "b": 3}


def test_every_deployment_file_loads_without_duplicate_keys() -> None:
    paths = [COMPOSE, *k8s_files(), *sorted((INFRA / "grafana" / "provisioning").rglob("*.yml"))]
    for path in paths:
        list(yaml.load_all(path.read_text(), StrictLoader))  # raises on a repeated key


def test_kustomization_lists_every_manifest_and_every_object_is_named() -> None:
    kustomization = load_yaml((K8S / "kustomization.yaml").read_text())
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
    try:
        return sorted(ROLES | {c.role for c in compose_containers() + k8s_containers() if c.role})
    except yaml.YAMLError:  # reported by test_every_deployment_file_loads_without_duplicate_keys
        return sorted(ROLES)


@pytest.mark.parametrize("role", _roles())
def test_role_is_a_mailpulse_subcommand(role: str) -> None:
    assert role in subcommands(), f"`mailpulse {role}` is run by a deployment file but does not exist"


def test_every_command_run_parses_as_the_cli_would() -> None:
    for c in compose_containers() + k8s_containers():
        assert Path(c.argv[0]).name == "mailpulse", c.where
        try:
            build_parser().parse_args(c.argv[1:])
        except SystemExit as exc:
            raise AssertionError(f"{c.where}: `{' '.join(c.argv)}` is not a valid mailpulse command") from exc


def deployed() -> list[tuple[Container, dict[str, str]]]:
    """Every mailpulse container with its whole environment (image ENV, then the manifests'), as an
    operator who followed docs/operations.md deploys it."""
    return [(c, {**image_env(), **k8s_settings(), **c.env}) for c in k8s_containers()] + [
        (c, {**image_env(), **c.env}) for c in compose_containers()
    ]


def test_every_server_role_binds_all_interfaces() -> None:
    served = set()
    for c, env in deployed():
        if c.role in BIND_SETTING:
            host = getattr(settings_from(env), BIND_SETTING[c.role])
            assert host in ALL_INTERFACES, f"{c.where}: `mailpulse {c.role}` binds {host} in its container"
            served.add(c.role)
    assert served == set(BIND_SETTING)


def test_every_container_starts_with_its_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """As far as this machine goes: the command parses, the CLI reads valid settings from the container's
    environment (with its own options), ingest passes the signature rule, and the dashboard has a token
    that survives restarts (a generated one would change at each)."""
    for c, env in deployed():
        for name in [n for n in os.environ if n.startswith("MAILPULSE_")]:
            monkeypatch.delenv(name)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        args = build_parser().parse_args(c.argv[1:])
        try:
            settings = cli._settings(args)
        except ValidationError as exc:
            raise AssertionError(f"{c.where}: {exc}") from exc
        if c.role == "ingest":
            assert cli._signed_or_allowed(settings) is None, c.where
        if c.role == "dashboard":
            assert settings.api_token is not None, f"{c.where}: no MAILPULSE_API_TOKEN"


def compose_ingest(variables: Mapping[str, str]) -> Settings:
    [ingest] = [c for c in compose_containers(variables) if c.role == "ingest"]
    return settings_from({**image_env(), **ingest.env})


def test_compose_ingest_is_signed_unless_the_operator_allows_unsigned() -> None:
    signed = compose_ingest(COMPOSE_SIGNED)
    assert cli._signed_or_allowed(signed) is None
    keyless = compose_ingest(COMPOSE_SECRETS)
    refusal = cli._signed_or_allowed(keyless)
    assert refusal is not None and "MAILPULSE_ALLOW_UNSIGNED" in refusal
    allowed = compose_ingest({**COMPOSE_SECRETS, "MAILPULSE_ALLOW_UNSIGNED": "true"})
    assert cli._signed_or_allowed(allowed) is None


def test_the_k8s_templates_leave_every_secret_to_the_operator() -> None:
    template = k8s_settings(filled=False)
    for name in [*SIGNATURE_KEYS, "MAILPULSE_API_TOKEN"]:
        assert template.get(name) == "CHANGE_ME", f"secret.yaml should ask for {name}"
    assert template["MAILPULSE_ALLOW_UNSIGNED"] == "false"


def is_secret_setting(name: str) -> bool:
    field = Settings.model_fields.get(name.removeprefix("MAILPULSE_").lower())
    return field is not None and (field.annotation is SecretStr or SecretStr in get_args(field.annotation))


SECRET_NAME = re.compile(r"PASSWORD|TOKEN|SECRET")


def test_tokens_and_passwords_come_from_secrets() -> None:
    """Kubernetes: only from the Secret (envFrom or secretKeyRef), never a ConfigMap or a literal env
    value. Compose: only from variables (${VAR}, no literal default), never written in the file."""
    secret_names = {n for n in Settings.model_fields if is_secret_setting(f"MAILPULSE_{n.upper()}")}
    assert {"api_token", "twilio_auth_token", "email_api_key_secret"} <= secret_names
    problems = []
    literal_k8s = [
        (where, k, str(v)) for where, doc in of_kind("ConfigMap") for k, v in (doc.get("data") or {}).items()
    ] + [(c.where, k, v) for c in k8s_containers() for k, v in c.env.items()]
    for where, name, value in literal_k8s:
        if is_secret_setting(name) or SECRET_NAME.search(name):
            problems.append(f"{where}: {name} is not from the Secret")
        if redact_dsn(value) != value:
            problems.append(f"{where}: {name} holds a password")
    for c in k8s_containers():
        for name, source in c.env_refs.items():
            if is_secret_setting(name) and "secretKeyRef" not in source:
                problems.append(f"{c.where}: {name} is not from a Secret")
    marker = "<from-a-variable>"
    for name, service in compose()["services"].items():
        for key, raw in (service.get("environment") or {}).items():
            value, secret = str(raw), is_secret_setting(key) or SECRET_NAME.search(key)
            for m in _INTERPOLATION.finditer(value):
                if secret and (m["op"] or "").endswith("-") and m["arg"]:
                    problems.append(f"compose {name}: {key} has a literal default")
            plain = _INTERPOLATION.sub(marker, value)
            if secret and plain not in ("", marker):
                problems.append(f"compose {name}: {key} is written in the file")
            if "://" in plain and urlsplit(plain).password not in (None, marker):
                problems.append(f"compose {name}: {key} holds a password")
    datasources = load_yaml((INFRA / "grafana/provisioning/datasources/clickhouse.yml").read_text())
    for source in datasources["datasources"]:
        for key, value in (source.get("secureJsonData") or {}).items():
            if not str(value).startswith("$"):
                problems.append(f"grafana datasource {source['name']}: {key} is written in the file")
    assert problems == []


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
    environments += [(c.where, env) for c, env in deployed()]
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
    provider = load_yaml((INFRA / "grafana/provisioning/dashboards/mailpulse.yml").read_text())
    paths = {p["options"]["path"] for p in provider["providers"]}
    assert paths == {"/var/lib/grafana/dashboards"}
    assert mounts["./grafana/dashboards"] in paths
