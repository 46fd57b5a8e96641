"""Alert settings: the webhook URL is a secret, checked, and empty means off."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from mailpulse.settings import Settings


def test_webhook_url_is_secret_checked_and_empty_means_off() -> None:
    on = Settings(alerts_webhook_url="https://hooks.slack.com/services/T0/B0/XyZtoken")
    assert on.alerts_webhook_url is not None and "XyZtoken" not in repr(on)
    assert Settings(alerts_webhook_url="").alerts_webhook_url is None
    with pytest.raises(ValidationError, match="absolute http"):
        Settings(alerts_webhook_url="hooks.slack.com/x")
    assert Settings().alerts_topic in Settings().topics
