"""A dead letter's JSON, cut to fit one Kafka record. Pure.

A dead letter keeps what could not be used, for people to read. If it is larger than the producer's
``max_request_size``, sending it fails, and with it what rejected the record: ingest answers its
sender 503 and is sent the same request again, the processor stops on the same record at every
restart. So when the whole letter does not fit, the rejected content keeps as many of its first
characters as fit, with its size in bytes and a flag saying it was cut. The original is still where it
came from (the status topic at the letter's offset; the sender's retries and logs for ingest).

Content orjson cannot write (nested deeper than 255 levels, a lone surrogate, an integer beyond 64
bits) would fail the send the same way: it is kept as JSON text instead (``json_text``), with
``<name>_as_text`` saying why.
"""

from __future__ import annotations

import json
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
    try:
        whole = orjson.dumps({**fields, name: content}, default=str)
    except orjson.JSONEncodeError:
        return _as_text(fields, name, content, most_bytes, size)
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


def _as_text(fields: dict[str, Any], name: str, content: Any, most_bytes: int, size: int | None) -> bytes:
    # The fields are the caller's own (shallow); their text may still hold a lone surrogate.
    fields = orjson.loads(json_text(fields, strict=True))
    try:
        orjson.dumps(content, default=str)
    except orjson.JSONEncodeError as exc:
        fields[f"{name}_as_text"] = f"the content cannot be re-encoded as JSON ({exc}): kept as text"
        content = json_text(content)
    return dead_letter(fields, name, content, most_bytes, size)


class _Raw:
    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def json_text(value: Any, strict: bool = False) -> str:
    """``value`` as ASCII JSON text, whatever orjson refuses: any depth (no recursion), any integer,
    NaN and infinities as Python's json writes them, anything else as its str. A lone surrogate is
    written as its JSON escape, or with ``strict`` as the text of that escape (``"\\\\ud800"``), which
    strict readers (orjson) take."""
    out: list[str] = []
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if type(item) is _Raw:
            out.append(item.text)
        elif isinstance(item, dict):
            parts: list[Any] = [_Raw("{")]
            for n, (key, inner) in enumerate(item.items()):
                parts += [_Raw(("," if n else "") + _string(str(key), strict) + ":"), inner]
            parts.append(_Raw("}"))
            stack.extend(reversed(parts))
        elif isinstance(item, list | tuple):
            parts = [_Raw("[")]
            for n, inner in enumerate(item):
                parts += [_Raw(","), inner] if n else [inner]
            parts.append(_Raw("]"))
            stack.extend(reversed(parts))
        elif item is None or isinstance(item, bool | int | float):
            out.append(json.dumps(item))
        else:
            out.append(_string(item if isinstance(item, str) else str(item), strict))
    return "".join(out)


def _string(text: str, strict: bool) -> str:
    if strict and not text.isascii():
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")  # only lone surrogates change
    return json.dumps(text)  # ASCII: every other non-ASCII character as \\uXXXX
