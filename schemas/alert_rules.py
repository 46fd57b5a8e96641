"""Alert rules, read from a TOML file (``[[rule]]`` tables); every problem in the file is reported.
Rates are those of ``schemas.outcomes`` (outcome by final status; docs/figures.md).

[[rule]]
name = "failure-rate"
metric = "failure_rate"     # failure_rate: (bounced + failed) / outcomes | bounce_rate: bounced / outcomes
                            # | spam_rate: spam reports / delivered | block_rate: blocked / outcomes
                            # | deferral_rate: deferred / reached SENT
threshold = 0.05            # fires when the rate is above this fraction
window_s = 300              # sliding window the rate is computed over (event time)
by = "sender_domain"        # "" (all mail) | provider | sender_domain | recipient_domain
                            # | mailbox_provider | tag
min_volume = 100            # the rate's denominator in the window below which the rule never fires
for_s = 60                  # the rate must stay above the threshold this long before firing
cooldown_s = 600            # after a resolve, the same rule and key stay quiet this long
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

Metric = Literal["failure_rate", "bounce_rate", "spam_rate", "block_rate", "deferral_rate"]
Dimension = Literal["", "provider", "sender_domain", "recipient_domain", "mailbox_provider", "tag"]


class AlertRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    metric: Metric
    threshold: float = Field(gt=0, le=1)
    window_s: int = Field(300, ge=60, le=7 * 86400)
    by: Dimension = ""
    min_volume: int = Field(100, ge=1)
    for_s: int = Field(60, ge=0)
    cooldown_s: int = Field(600, ge=0)


class _RulesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rule: list[AlertRule] = Field(min_length=1)


# Spam rate: Gmail's and Yahoo's bulk-sender rules keep user-reported spam below 0.3% and recommend
# below 0.1% (docs/alerting-rules.md), per mailbox provider since each judges its own users' reports.
# A day's window, as Postmaster Tools counts; 1,000 delivered at least, so that one report (0.1%) is not
# an alert. Two rules, one per threshold: warning and critical.
_SIGNAL_WINDOW_S = 86400
DEFAULT_RULES: tuple[AlertRule, ...] = (
    AlertRule(name="failure-rate", metric="failure_rate", threshold=0.10),
    AlertRule(name="bounce-rate", metric="bounce_rate", threshold=0.05),
    AlertRule(
        name="spam-rate-warning", metric="spam_rate", threshold=0.001, window_s=_SIGNAL_WINDOW_S,
        by="mailbox_provider", min_volume=1000, for_s=600, cooldown_s=3600,
    ),
    AlertRule(
        name="spam-rate-critical", metric="spam_rate", threshold=0.003, window_s=_SIGNAL_WINDOW_S,
        by="mailbox_provider", min_volume=1000, for_s=600, cooldown_s=3600,
    ),
    AlertRule(
        name="block-rate", metric="block_rate", threshold=0.02, window_s=3600, by="mailbox_provider",
        min_volume=500, for_s=300, cooldown_s=3600,
    ),
    AlertRule(
        name="deferral-rate", metric="deferral_rate", threshold=0.20, window_s=3600, by="mailbox_provider",
        min_volume=500, for_s=600, cooldown_s=3600,
    ),
)  # fmt: skip


class RulesError(ValueError):
    """The rules file is unreadable or invalid; the message lists every problem."""


def parse_rules(text: str, source: str = "rules") -> tuple[AlertRule, ...]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"{source}: not valid TOML: {exc}") from None
    try:
        rules = _RulesFile.model_validate(data).rule
    except ValidationError as exc:
        problems = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        raise RulesError(f"{source}: " + "; ".join(problems)) from None
    names = [r.name for r in rules]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise RulesError(f"{source}: rule names must be unique: {', '.join(duplicated)}")
    return tuple(rules)


def load_rules(path: Path | None) -> tuple[AlertRule, ...]:
    """Rules from ``path``; the defaults when no file is configured."""
    if path is None:
        return DEFAULT_RULES
    try:
        text = path.read_text()
    except OSError as exc:
        raise RulesError(f"{path}: cannot read: {exc.strerror}") from None
    return parse_rules(text, str(path))
