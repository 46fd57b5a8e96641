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

# The most a character takes in orjson's output: a control character is written as \u00XX.
_MOST_BYTES_PER_CHAR = 6


def dead_letter(
    fields: dict[str, Any], name: str, content: Any, most_bytes: int, size: int | None = None
) -> bytes:
    """``fields`` and ``content`` (under ``name``) as JSON, at most ``most_bytes`` long when ``fields``
    leave room. Content that does not fit becomes the start of its JSON text (a string as it is), with
    ``<name>_bytes`` (``size``, the original's size; by default that text's) and ``<name>_cut``."""
    whole = orjson.dumps({**fields, name: content}, default=str)
    if len(whole) <= most_bytes:
        return whole
    text = content if isinstance(content, str) else orjson.dumps(content, default=str).decode()
    cut = {
        **fields,
        name: "",
        f"{name}_bytes": len(text.encode()) if size is None else size,
        f"{name}_cut": True,
    }
    keep = max(0, (most_bytes - len(orjson.dumps(cut, default=str))) // _MOST_BYTES_PER_CHAR)
    cut[name] = text[:keep]
    return orjson.dumps(cut, default=str)
