"""Secrets never printed: the one redaction every banner and log line goes through."""

from __future__ import annotations

import re

# scheme://user:password@ (the password may hold '@': the authority ends at the last one before '/');
# and ?password=... / &password=... query parameters (clickhouse-connect reads those too).
_USERINFO = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*):(?P<password>[^/\s]*)@")
_QUERY = re.compile(r"(?P<head>[?&](?:password|passwd|pwd)=)[^&#\s]*", re.IGNORECASE)
REDACTED = "***"


def redact_dsn(text: str) -> str:
    """``text`` with the password of every URL or DSN in it replaced by ***: one URL, a banner, a log line.
    A URL without credentials is returned unchanged."""
    text = _USERINFO.sub(lambda m: f"{m['head']}:{REDACTED}@", text)
    return _QUERY.sub(lambda m: f"{m['head']}{REDACTED}", text)
