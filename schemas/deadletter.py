"""A dead letter's JSON, cut to fit one Kafka record. Pure.

A dead letter keeps what could not be used, for people to read. If it is larger than the producer's
``max_request_size``, sending it fails, and with it what rejected the record: ingest answers its
sender 503 and is sent the same request again, the processor stops on the same record at every
restart. So when the whole letter does not fit, the rejected content keeps as many of its first
characters as fit, with its size in bytes and a flag saying it was cut. The original is still where it
came from (the status topic at the letter's offset; the sender's retries and logs for ingest).
"""

from __future__ import annotations

from typing import Any

import orjson

# Left for Kafka's record and batch overhead and the record's key.
HEADROOM_BYTES = 16 * 1024
# The most a character takes in orjson's output: a control character is written as \u00XX.
_MOST_BYTES_PER_CHAR = 6


def dead_letter(fields: dict[str, Any], name: str, content: Any, size: int, most_bytes: int) -> bytes:
    """``fields`` and ``content`` (under ``name``) as JSON, at most ``most_bytes - HEADROOM_BYTES``
    long when ``fields`` leave room. Content that does not fit becomes the start of its JSON text (a
    string as it is), with ``<name>_bytes`` (``size``, the original's size) and ``<name>_cut``."""
    whole = orjson.dumps({**fields, name: content}, default=str)
    room = most_bytes - HEADROOM_BYTES
    if len(whole) <= room:
        return whole
    text = content if isinstance(content, str) else orjson.dumps(content, default=str).decode()
    rest = orjson.dumps({**fields, name: "", f"{name}_bytes": size, f"{name}_cut": True}, default=str)
    keep = max(0, (room - len(rest)) // _MOST_BYTES_PER_CHAR)
    cut = {**fields, name: text[:keep], f"{name}_bytes": size, f"{name}_cut": True}
    return orjson.dumps(cut, default=str)
