"""The alert webhook URL, checked once at start (settings) and again by the notifier. Pure."""

from __future__ import annotations

from urllib.parse import urlsplit


def webhook_url_problem(url: str) -> str | None:
    """What is wrong with a webhook URL, without repeating it (Slack puts the token in it); None if fine."""
    try:
        parsed = urlsplit(url)
        parsed.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError as exc:
        return f"does not parse as a URL ({exc})"
    if parsed.scheme not in ("http", "https"):
        return "must be an absolute http(s):// URL"
    if not parsed.hostname:
        return "has no host (expected e.g. https://hooks.slack.com/services/...)"
    if any(c.isspace() for c in url):
        return "contains whitespace"
    return None
