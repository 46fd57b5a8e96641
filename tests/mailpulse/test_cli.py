"""The one CLI: every subcommand the issue names exists, and `--help` on each says what it does."""

from __future__ import annotations

import argparse

import pytest

from mailpulse.cli import build_parser

ROLES = (
    "demo", "run", "ingest", "poll", "process", "alerts", "dashboard", "migrate", "topics", "simulate",
    "replay", "sql", "bench", "report", "dump", "rewind", "config", "broker",
)  # fmt: skip


def subparsers() -> dict[str, argparse.ArgumentParser]:
    [action] = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def test_every_role_is_a_subcommand() -> None:
    assert set(ROLES) <= set(subparsers())


@pytest.mark.parametrize("name", ROLES)
def test_help_says_what_the_subcommand_does(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args([name, "--help"])
    assert exited.value.code == 0
    shown = capsys.readouterr().out
    description = subparsers()[name].description
    assert description and len(description) > 20
    assert " ".join(description.split()[:4]) in " ".join(shown.split())
