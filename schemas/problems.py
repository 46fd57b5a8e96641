"""Validation problems, reported all at once with where they were found."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError


@dataclass(frozen=True, slots=True)
class Problem:
    field: str
    message: str


class InvalidEvent(ValueError):
    """A provider event that cannot become a canonical event; carries every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))
        self.problems = problems


def problems_from(error: ValidationError, prefix: str = "") -> list[Problem]:
    out = []
    for item in error.errors(include_url=False):
        loc = ".".join(str(part) for part in item["loc"]) or "(event)"
        out.append(Problem(f"{prefix}{loc}", item["msg"]))
    return out
