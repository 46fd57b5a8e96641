"""Signed by default (ingest refuses to start with an endpoint that would take unsigned events, unless
MAILPULSE_ALLOW_UNSIGNED=true, and every such start logs a warning), and secrets never printed (URL
passwords redacted in banners and log lines)."""

from __future__ import annotations

import ast
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from mailpulse.logs import formatter, redacted_excepthook
from mailpulse.redact import redact_dsn
from mailpulse.runtime import ingest_config
from mailpulse.settings import Settings
from mailpulse.unsigned_ingest import SIGNATURE_SETTINGS, unsigned_endpoints, unsigned_refusal, warn_unsigned
from schemas.signatures import public_key_b64

ROOT = Path(__file__).resolve().parents[2]
ENDPOINTS = ["/webhooks/sendgrid/events", "/webhooks/sendgrid/inbound", "/webhooks/twilio/events"]
KEY_SETTINGS = [
    "MAILPULSE_SENDGRID_WEBHOOK_PUBLIC_KEY",
    "MAILPULSE_SENDGRID_INBOUND_PUBLIC_KEY",
    "MAILPULSE_TWILIO_AUTH_TOKEN",
]


def a_key() -> str:
    return public_key_b64(ec.generate_private_key(ec.SECP256R1()).public_key())


def signed() -> dict[str, str]:
    """Every endpoint's signature setting, as environment variables."""
    return dict(zip(KEY_SETTINGS, [a_key(), a_key(), "tw-auth-token"], strict=True))


def settings_of(env: dict[str, str]) -> Settings:
    fields: dict[str, Any] = {k.removeprefix("MAILPULSE_").lower(): v for k, v in env.items()}
    return Settings(_env_file=None, **fields)


@pytest.fixture(autouse=True)
def _no_outside_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("MAILPULSE_")]:
        monkeypatch.delenv(name)


def test_each_endpoint_is_unsigned_until_its_own_setting_is_given() -> None:
    assert unsigned_endpoints(ingest_config(Settings())) == ENDPOINTS
    assert dict(zip(ENDPOINTS, KEY_SETTINGS, strict=True)) == SIGNATURE_SETTINGS
    for endpoint, setting in SIGNATURE_SETTINGS.items():
        one = settings_of({setting: signed()[setting]})
        assert unsigned_endpoints(ingest_config(one)) == [e for e in ENDPOINTS if e != endpoint]
    assert unsigned_endpoints(ingest_config(settings_of(signed()))) == []


def test_an_empty_variable_is_no_key() -> None:
    empty = settings_of(dict.fromkeys([*KEY_SETTINGS, "MAILPULSE_API_TOKEN"], ""))
    assert unsigned_endpoints(ingest_config(empty)) == ENDPOINTS
    assert empty.api_token is None


def test_the_rule_every_endpoint_signed_or_unsigned_explicitly_allowed() -> None:
    refusal = unsigned_refusal(Settings(), ingest_config(Settings()))
    assert refusal is not None
    for name in [*KEY_SETTINGS, "MAILPULSE_ALLOW_UNSIGNED=true", *ENDPOINTS]:
        assert name in refusal
    twilio_only = settings_of({"MAILPULSE_TWILIO_AUTH_TOKEN": "tw"})
    partly = unsigned_refusal(twilio_only, ingest_config(twilio_only))
    assert partly is not None and "MAILPULSE_TWILIO_AUTH_TOKEN" not in partly  # only what is missing
    allowed = Settings(allow_unsigned=True)
    assert unsigned_refusal(allowed, ingest_config(allowed)) is None
    assert unsigned_refusal(settings_of(signed()), ingest_config(settings_of(signed()))) is None


def test_a_start_that_accepts_unsigned_events_logs_a_warning_naming_them(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        warn_unsigned(ingest_config(settings_of({"MAILPULSE_TWILIO_AUTH_TOKEN": "tw"})))
        warn_unsigned(ingest_config(settings_of(signed())))  # all signed: nothing to say
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert "/webhooks/sendgrid/events, /webhooks/sendgrid/inbound" in record.getMessage()
    assert "/webhooks/twilio/events" not in record.getMessage()


def cli(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    """`mailpulse ARGS` with only these settings; it must end by itself (it refuses before any I/O)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MAILPULSE_")}
    return subprocess.run(
        [sys.executable, "-m", "mailpulse.cli", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_ingest_without_signature_keys_refuses_to_start(tmp_path: Path) -> None:
    done = cli(["ingest", "--port", "1"], MAILPULSE_DATA_DIR=str(tmp_path))
    assert done.returncode == 2, done
    for name in [*KEY_SETTINGS, "MAILPULSE_ALLOW_UNSIGNED"]:
        assert name in done.stderr
    assert not (tmp_path / "tansu.log").exists()  # refused before starting anything


@pytest.mark.parametrize("command", ["run", "demo"])
def test_run_and_demo_on_a_configured_kafka_follow_ingests_rule(command: str, tmp_path: Path) -> None:
    # Port 1 of loopback: nothing listens, and the command must refuse before trying it.
    done = cli([command], MAILPULSE_DATA_DIR=str(tmp_path), MAILPULSE_KAFKA_BOOTSTRAP="127.0.0.1:1")
    assert done.returncode == 2, done
    assert "MAILPULSE_ALLOW_UNSIGNED" in done.stderr and "MAILPULSE_TWILIO_AUTH_TOKEN" in done.stderr


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("http://mailpulse:s3cret@clickhouse:8123", "http://mailpulse:***@clickhouse:8123"),
        ("https://u:p@ss:w@rd@ch.example:8443/db?x=1", "https://u:***@ch.example:8443/db?x=1"),
        ("https://ch.example:8443/?user=u&password=s3cret&x=1", "https://ch.example:8443/?user=u&password=***&x=1"),
        ("clickhouse at http://a:b@h1:1 and https://c:d@h2/", "clickhouse at http://a:***@h1:1 and https://c:***@h2/"),
        ("http://clickhouse:8123", "http://clickhouse:8123"),
        ("http://user@clickhouse:8123", "http://user@clickhouse:8123"),
        ("chdb:///var/lib/mailpulse/clickhouse", "chdb:///var/lib/mailpulse/clickhouse"),
        ("kafka-0.kafka:9092,kafka-1.kafka:9092", "kafka-0.kafka:9092,kafka-1.kafka:9092"),
        ("http://127.0.0.1:8090/dashboard#token=abc", "http://127.0.0.1:8090/dashboard#token=abc"),
    ],
)  # fmt: skip
def test_redact_dsn_hides_passwords_only(given: str, shown: str) -> None:
    assert redact_dsn(given) == shown


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_every_log_line_is_redacted(fmt: str) -> None:
    url = "http://mailpulse:s3cret@clickhouse:8123"
    try:
        raise ConnectionError(f"cannot reach {url}")
    except ConnectionError:
        record = logging.LogRecord(
            "clickhouse_connect", logging.ERROR, __file__, 1, "load into %s failed",
            ("https://mailpulse:s3cret@clickhouse:8443",), sys.exc_info(),
        )  # fmt: skip
    line = formatter(fmt).format(record)
    assert "s3cret" not in line
    assert line.count("mailpulse:***@clickhouse") == 2  # the message and the exception
    if fmt == "json":
        assert orjson.loads(line)["message"] == "load into https://mailpulse:***@clickhouse:8443 failed"


WATCHED = ("clickhouse_dsn", "clickhouse_url", "email_api_base_url", "bootstrap", "alerts_webhook_url")


def unredacted(path: Path) -> list[str]:
    """Printed expressions (f-string parts) that name a URL or DSN setting without redact_dsn around them."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FormattedValue):
            value = node.value
            if isinstance(value, ast.Call) and ast.unparse(value.func) == "redact_dsn":
                continue
            source = ast.unparse(value)
            if any(name in source for name in WATCHED):
                found.append(f"{path.name}:{node.lineno}: {source}")
    return found


def test_banners_print_urls_and_dsns_only_through_redact_dsn() -> None:
    banners = [ROOT / "mailpulse" / "cli.py", ROOT / "mailpulse" / "demo.py"]
    assert [line for path in banners for line in unredacted(path)] == []


def test_the_banner_check_sees_an_unredacted_dsn(tmp_path: Path) -> None:
    sample = tmp_path / "banner.py"
    sample.write_text('print(f"into {settings.clickhouse_dsn()} from {redact_dsn(bootstrap)}")\n')
    assert unredacted(sample) == ["banner.py:1: settings.clickhouse_dsn()"]


def test_an_uncaught_exception_is_printed_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    url = "https://mailpulse:s3cret@clickhouse:8443"
    try:
        raise RuntimeError(f"cannot load into {url}")
    except RuntimeError as exc:
        redacted_excepthook(RuntimeError, exc, exc.__traceback__)
    printed = capsys.readouterr().err
    assert "RuntimeError: cannot load into https://mailpulse:***@clickhouse:8443" in printed
    assert "s3cret" not in printed


def test_settings_never_show_the_clickhouse_password() -> None:
    settings = Settings(clickhouse_url="https://mailpulse:s3cret@clickhouse:8443")
    assert "s3cret" not in repr(settings) + str(settings)
