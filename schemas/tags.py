"""The Email API tag rules for one pair, remembered: webhook custom args and tags repeat from event to
event (campaign names), and the full check (``schemas.event.tag_problems``) is the costlier step
(docs/performance.md#hot-path-choices). Pure."""

from __future__ import annotations

from schemas.event import MAX_TAGS, tag_problems

_MEMO_MAX = 4096  # emptied when full, as the partitioner's memo
_memo: dict[tuple[str, str], bool] = {}


def is_tag(key: str, value: str) -> bool:
    """``tag_problems({key: value})`` finds nothing."""
    ok = _memo.get((key, value))
    if ok is None:
        if len(_memo) >= _MEMO_MAX:
            _memo.clear()
        ok = _memo[key, value] = not tag_problems({key: value})
    return ok


def are_tags(tags: dict[str, str]) -> bool:
    """``tag_problems(tags)`` finds nothing (string keys and values already checked)."""
    return len(tags) <= MAX_TAGS and all(is_tag(key, value) for key, value in tags.items())
