"""The OpenAPI description is the contract: schemathesis generates requests from /openapi.json and sends
them to the real ingest server (uvicorn on loopback, a real publisher on the real Tansu broker). Every
answer must be one the description lists, in the form it lists, never a 5xx; a request valid by the
description is accepted (2xx), or refused only for its signature or size; a method a path does not
declare gets 405. Bounded examples keep it well under a minute."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
from schemathesis import checks
from schemathesis.config import SchemathesisConfig
from schemathesis.generation import GenerationMode

from mailpulse.broker import EmbeddedBroker, free_port
from mailpulse.runtime import serve_ingest, wait_listening
from mailpulse.settings import Settings
from mailpulse.topics import ensure_topics

pytestmark = [pytest.mark.kafka]

# A request valid by the description may still be refused for these: signature, size.
ACCEPTED = ["2xx", "401", "403", "413"]
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
    checks.positive_data_acceptance,
]


@pytest.fixture(scope="module")
def ingest_url(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ingest server (unsigned endpoints, so valid requests can be accepted) on its own loop."""
    suffix = uuid.uuid4().hex[:10]
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("contract"),
        kafka_bootstrap=broker.bootstrap,
        status_topic=f"status-{suffix}",
        deadletter_topic=f"dead-{suffix}",
        partitions=3,
    )
    port = free_port()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    ready = threading.Event()

    async def main() -> None:
        await ensure_topics(broker.bootstrap, [settings.status_topic, settings.deadletter_topic], 3)
        server = asyncio.create_task(serve_ingest(settings, broker.bootstrap, stop, port))
        await wait_listening("127.0.0.1", port)
        ready.set()
        await server

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(60), "ingest did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
        loop.close()


@pytest.fixture(scope="module")
def ingest_schema(ingest_url: str) -> Any:
    config = SchemathesisConfig.from_dict(
        {"checks": {"positive_data_acceptance": {"expected-statuses": ACCEPTED}}}
    )
    return schemathesis.openapi.from_url(f"{ingest_url}/openapi.json", config=config)


def test_every_answer_is_described_and_valid_requests_are_accepted(ingest_schema: Any) -> None:
    operations = [result.ok() for result in ingest_schema.get_all_operations()]
    assert {"POST /webhooks/sendgrid/events", "GET /readyz"} <= {o.label for o in operations}
    for mode, examples in ((GenerationMode.POSITIVE, 25), (GenerationMode.NEGATIVE, 10)):
        for operation in operations:
            if mode is GenerationMode.NEGATIVE and not operation.label.startswith("POST"):
                continue  # nothing to make invalid in a GET without parameters

            @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
            @hypothesis.settings(
                max_examples=examples,
                deadline=None,
                suppress_health_check=list(hypothesis.HealthCheck),
                derandomize=True,  # the same requests on every run: a failure is reproducible
                database=None,
                phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
            )
            def conforms(case: Any) -> None:
                case.call_and_validate(checks=CHECKS)

            conforms()


def test_the_schemathesis_cli_finds_nothing(ingest_url: str, tmp_path: Path) -> None:
    """As the issue tried it (`st run <ingest>/openapi.json --checks all`), bounded: its coverage phase
    adds boundary values and undeclared methods. negative_data_rejection is left out: ingest takes
    more than the description promises (nulls for absent fields, longer emails whose message id fits,
    bodySHA256 unchecked without a token)."""
    config = tmp_path / "schemathesis.toml"
    expected = ", ".join(f'"{status}"' for status in ACCEPTED)
    config.write_text(f"[checks.positive_data_acceptance]\nexpected-statuses = [{expected}]\n")
    command = [str(Path(sys.executable).with_name("st")), "--config-file", str(config), "run"]
    command += [
        f"{ingest_url}/openapi.json",
        "--checks",
        "all",
        "--exclude-checks",
        "negative_data_rejection",
    ]
    command += ["--phases", "coverage,fuzzing", "--max-examples", "20", "--seed", "1", "--no-color"]
    run = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "No issues found" in run.stdout


@pytest.mark.parametrize(
    "path",
    ["/webhooks/sendgrid/events", "/webhooks/twilio/events", "/webhooks/sendgrid/inbound", "/healthz",
     "/readyz", "/openapi.json", "/metrics/", "/metrics/anything"],
)  # fmt: skip
def test_undeclared_methods_answer_405_with_allow(ingest_url: str, path: str) -> None:
    document = requests.get(f"{ingest_url}/openapi.json", timeout=10).json()
    declared = {m.upper() for m in document["paths"].get(path, document["paths"]["/metrics/"])}
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"):
        if method in declared:
            continue
        answer = requests.request(method, f"{ingest_url}{path}", timeout=10)
        assert answer.status_code == 405, (method, path, answer.status_code)
        allowed = {m.strip() for m in answer.headers["allow"].split(",")}
        assert declared <= allowed <= declared | {"HEAD"}, (method, path, allowed)
