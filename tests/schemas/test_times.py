"""One reading of times people type: no offset means UTC, in `rewind --since`, `dump --since` and the
API's from/to alike, whatever the machine's zone; out-of-range times are refused with a message."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailpulse.cli import build_parser
from schemas.times import EARLIEST, LATEST, parse_utc

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-23T14:00", datetime(2026, 11, 23, 14, tzinfo=UTC)),
        ("2026-11-23T14:00:00Z", datetime(2026, 11, 23, 14, tzinfo=UTC)),
        (" 2026-11-23T09:00:00-05:00 ", datetime(2026, 11, 23, 14, tzinfo=UTC)),
        ("2026-11-23", datetime(2026, 11, 23, tzinfo=UTC)),
        ("1970-01-01T00:00:00Z", EARLIEST),
    ],
)
def test_parses_to_utc(text: str, expected: datetime) -> None:
    parsed = parse_utc(text)
    assert parsed == expected and parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0000-01-01", "out of range"),
        ("0001-01-01T00:00:00+01:00", "out of range"),  # year 0 once in UTC
        ("9999-12-31T23:59:59+14:00", "out of range"),  # past 2106
        ("9999-12-31T23:59:59-14:00", "out of range"),  # year 10000 once in UTC
        ("1969-12-31T23:59:59Z", "out of range"),
        ("2106-01-01T00:00:00Z", "out of range"),
        ("yesterday", "is not an ISO-8601 time"),
        ("9" * 5000, "is not an ISO-8601 time"),
        ("2026-13-01", "is not an ISO-8601 time"),
    ],
)
def test_refuses_with_a_message(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        parse_utc(text)
    assert len(str(caught.value)) < 200, "the message quotes the input cut short"


@given(
    st.datetimes(EARLIEST.replace(tzinfo=None), LATEST.replace(tzinfo=None) - timedelta(days=1)),
    st.integers(-14 * 60, 14 * 60),
)
def test_any_offset_names_the_same_instant(moment: datetime, offset_minutes: int) -> None:
    instant = moment.replace(tzinfo=UTC)
    assert parse_utc(moment.isoformat()) == instant  # naive: UTC
    zone = timezone(timedelta(minutes=offset_minutes))
    assert parse_utc(instant.astimezone(zone).isoformat()) == instant


def test_a_bad_since_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    for command in (["rewind", "--since", "0000-01-01"], ["dump", "out.jsonl", "--since", "soon"]):
        with pytest.raises(SystemExit) as exited:
            build_parser().parse_args(command)
        assert exited.value.code == 2
        assert "--since" in capsys.readouterr().err


# Run with TZ set to New York: the CLI's --since and the API's from/to, given without an offset.
SCRIPT = """
import json
from datetime import datetime
from analytics import queries as q
from mailpulse.cli import build_parser

text = "2026-11-23T14:00"
parser = build_parser()
window = q.parse_window({"from": [text], "to": ["2026-11-23T15:00"]}, datetime.now().astimezone())
print(json.dumps({
    "local_offset_h": datetime(2026, 11, 23, 14).astimezone().utcoffset().total_seconds() / 3600,
    "rewind": parser.parse_args(["rewind", "--since", text]).since.isoformat(),
    "dump": parser.parse_args(["dump", "out.jsonl", "--since", text]).since.isoformat(),
    "api": window.start.isoformat(),
}))
"""


def test_no_offset_means_utc_in_another_time_zone() -> None:
    env = {**os.environ, "TZ": "America/New_York", "PYTHONPATH": ROOT}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer.pop("local_offset_h") == -5.0, "the process really runs in New York time"
    assert answer == dict.fromkeys(("rewind", "dump", "api"), "2026-11-23T14:00:00+00:00")
