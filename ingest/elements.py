"""An event batch's elements: reading the array, and what becomes of the rejected ones. Pure.

Bounds (docs/ingest.md): a post holds at most ``DEFAULT_MAX_ELEMENTS`` elements (a setting), several
times anything SendGrid (about 1,000 events or 768 KB a post) or Twilio Event Streams (at most 100
CloudEvents a post) sends. Up to ``PER_ELEMENT_LETTERS`` rejected elements get a dead letter each, as
they always did; a post with more gets one dead letter of counts and its first rejected elements, and
its answer lists at most ``MAX_ERRORS`` problems: what a flood of invalid elements costs stays bounded
whatever the number of elements.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

import orjson

from adapters.publisher import Rejected
from schemas.deadletter import dead_letter
from schemas.privacy import RecipientPrivacy

DEFAULT_MAX_ELEMENTS = 10_000
PER_ELEMENT_LETTERS = 10  # more rejected elements than this in a post: one dead letter for the post
MAX_ERRORS = 100  # problems listed in an answer; the rest are counted
_TALLIED = 20  # distinct (field, message) pairs counted in a flood's dead letter
_INT64_MIN, _UINT64_MAX = -(2**63), 2**64 - 1


class NotJson(ValueError):
    """The body is no JSON text; the message says where."""


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number {text[:40]} is infinite as a double")
    return value


def _integer(text: str) -> int | float:
    value = int(text)  # ValueError past 4,300 digits
    if _INT64_MIN <= value <= _UINT64_MAX:
        return value
    # orjson reads integers beyond 64 bits as doubles: the same values whichever reader read them.
    return _finite(text)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def load_batch(body: bytes) -> tuple[Any, bool]:
    """The JSON value of ``body`` and whether it may hold lone surrogates. orjson refuses a whole body
    for one ``"\\ud800"`` escape (text no UTF-8 encoder writes back); the standard library reads it,
    so that only the elements holding one are refused (``lone_surrogate``), not their neighbours."""
    try:
        return orjson.loads(body), False
    except orjson.JSONDecodeError as exc:
        if "surrogate" not in str(exc):
            raise NotJson(str(exc)) from None
        first = exc
    try:
        return json.loads(
            body.decode("utf-8"), parse_float=_finite, parse_int=_integer, parse_constant=_no_constant
        ), True
    except (ValueError, RecursionError):  # what orjson found first is the clearer message
        raise NotJson(str(first)) from None


def printable(text: str) -> str:
    """``text`` with any lone surrogate written as its escape (``\\ud800``): JSON can carry it."""
    if text.isascii():
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _has_surrogate(text: str) -> bool:
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def lone_surrogate(value: Any) -> str | None:
    """The path of the first string or key in ``value`` holding a lone surrogate, else None.
    Iterative: an element may be nested as deep as the JSON reader allows (1,024 levels)."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if _has_surrogate(item):
                return path or "(event)"
        elif isinstance(item, dict):
            for key, inner in reversed(item.items()):
                where = f"{path}.{printable(key)}" if path else printable(key)
                if _has_surrogate(key):
                    return where
                stack.append((where, inner))
        elif isinstance(item, list):
            stack.extend(
                (f"{path}.{i}" if path else str(i), inner) for i, inner in reversed(list(enumerate(item)))
            )
    return None


def _scrubbed(privacy: RecipientPrivacy, raw: Any) -> Any:
    try:
        return privacy.scrub(raw)
    except RecursionError:  # nested deeper than recursion goes (orjson reads 1,024 levels)
        return _scrub_deep(privacy, raw)


def _scrub_deep(privacy: RecipientPrivacy, value: Any) -> Any:
    """``privacy.scrub(value)`` without recursion."""
    root: list[Any] = [None]
    stack: list[tuple[Any, Any, Any]] = [(value, root, 0)]  # (item, where it goes, under what key)
    while stack:
        item, into, key = stack.pop()
        if isinstance(item, str):
            into[key] = privacy.text(item)
        elif isinstance(item, list):
            out: Any = [None] * len(item)
            into[key] = out
            stack.extend((inner, out, i) for i, inner in enumerate(item))
        elif isinstance(item, dict):
            into[key] = out = {}
            for name, inner in item.items():
                name = privacy.text(name) if isinstance(name, str) else name
                out[name] = None  # keeps the keys' order
                stack.append((inner, out, name))
        else:
            into[key] = item
    return root[0]


class Rejections:
    """The rejected elements of one post, kept within bounds: the first ``PER_ELEMENT_LETTERS`` in
    full, the first ``MAX_ERRORS`` problems for the answer, and counts of the rest."""

    __slots__ = ("count", "endpoint", "errors", "first", "privacy", "problems", "tally")

    def __init__(self, endpoint: str, privacy: RecipientPrivacy) -> None:
        self.endpoint = endpoint
        self.privacy = privacy
        self.count = 0  # rejected elements
        self.problems = 0  # their problems
        self.first: list[Rejected] = []
        self.errors: list[dict[str, Any]] = []
        self.tally: dict[tuple[str, str], int] = {}  # a plain dict: cheaper per post than a Counter

    def add(self, index: int, raw: Any, problems: list[dict[str, str]]) -> None:
        self.count += 1
        self.problems += len(problems)
        if len(self.first) < PER_ELEMENT_LETTERS:
            self.first.append(Rejected(self.endpoint, index, _scrubbed(self.privacy, raw), problems))
        room = MAX_ERRORS - len(self.errors)
        if room > 0:
            self.errors.extend({"index": index, **p} for p in problems[:room])
        tally = self.tally
        for p in problems:
            key = (p["field"], p["message"])
            if key in tally or len(tally) < _TALLIED:
                tally[key] = tally.get(key, 0) + 1

    def answer(self) -> dict[str, Any]:
        """The answer's ``rejected`` and ``errors``; ``errors_total`` when ``errors`` is cut."""
        out: dict[str, Any] = {"rejected": self.count, "errors": self.errors}
        if self.problems > len(self.errors):
            out["errors_total"] = self.problems
        return out

    def dead_letters(self, elements: int, accepted: int) -> list[Rejected]:
        if self.count <= PER_ELEMENT_LETTERS:
            return self.first
        return [Flood(self, elements, accepted)]


class Flood(Rejected):
    """The one dead letter of a post with many rejected elements: counts, the most frequent
    problems, and the first rejected elements (each payload cut to its share of the record)."""

    __slots__ = ("about", "first")

    def __init__(self, rejections: Rejections, elements: int, accepted: int) -> None:
        first = rejections.first
        super().__init__(rejections.endpoint, first[0].index, None, [])
        self.first = first
        self.about: dict[str, Any] = {
            "stage": "ingest",
            "endpoint": rejections.endpoint,
            "flood": True,
            "elements": elements,
            "accepted": accepted,
            "rejected": rejections.count,
            "problems_total": rejections.problems,
            "problem_counts": [
                {"field": field, "message": message, "count": count}
                for (field, message), count in sorted(rejections.tally.items(), key=lambda kv: -kv[1])
            ],
        }

    def to_json(self, most_bytes: int) -> bytes:
        share = most_bytes // (2 * max(1, len(self.first)))
        firsts = [
            orjson.Fragment(
                dead_letter({"index": r.index, "problems": r.problems}, "payload", r.payload, share)
            )
            for r in self.first
        ]
        about = {**self.about, "at": datetime.now(UTC).isoformat()}
        return dead_letter(about, "first", firsts, most_bytes)
