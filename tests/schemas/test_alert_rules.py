"""Alert rule files: the signal metrics and the mailbox provider dimension parse; the default rules hold
the published spam-rate thresholds per mailbox provider, with a minimum volume."""

from __future__ import annotations

import pytest

from schemas.alert_rules import DEFAULT_RULES, RulesError, parse_rules


def test_signal_metrics_and_the_mailbox_provider_dimension_parse() -> None:
    rules = parse_rules(
        "\n".join(
            f'[[rule]]\nname = "{metric}"\nmetric = "{metric}"\nthreshold = 0.01\nby = "mailbox_provider"\n'
            for metric in ("spam_rate", "block_rate", "deferral_rate", "failure_rate", "bounce_rate")
        )
    )
    assert [r.metric for r in rules][:3] == ["spam_rate", "block_rate", "deferral_rate"]
    assert {r.by for r in rules} == {"mailbox_provider"}
    with pytest.raises(RulesError, match="metric"):
        parse_rules('[[rule]]\nname = "x"\nmetric = "complaint_rate"\nthreshold = 0.01\n')
    with pytest.raises(RulesError, match="by"):
        parse_rules('[[rule]]\nname = "x"\nmetric = "spam_rate"\nthreshold = 0.01\nby = "mailbox"\n')


def test_default_spam_rules_are_the_published_thresholds_per_mailbox_provider() -> None:
    spam = {r.name: r for r in DEFAULT_RULES if r.metric == "spam_rate"}
    assert {name: r.threshold for name, r in spam.items()} == {
        "spam-rate-warning": 0.001,
        "spam-rate-critical": 0.003,
    }
    for rule in spam.values():
        assert rule.by == "mailbox_provider" and rule.window_s == 86400
        # Firing takes a rate above the threshold: at min_volume or more, one report is not enough.
        assert rule.min_volume * rule.threshold >= 1
    assert {r.metric for r in DEFAULT_RULES} == {
        "failure_rate", "bounce_rate", "spam_rate", "block_rate", "deferral_rate"
    }  # fmt: skip
