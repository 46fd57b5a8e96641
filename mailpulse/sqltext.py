"""Reading a SQL statement just enough to tell whether it names its own output format. Pure."""

from __future__ import annotations

import re

# Strings, quoted identifiers and comments are skipped whole, so a FORMAT inside them does not count.
_TOKEN = re.compile(
    r"""'(?:[^'\\]|\\.|'')*'?      # string literal ('' and \' escapes; unterminated runs to the end)
    |"(?:[^"\\]|\\.|"")*"?         # quoted identifier
    |`(?:[^`\\]|\\.|``)*`?         # quoted identifier
    |--[^\n]*|\#[^\n]*             # line comments
    |/\*.*?(?:\*/|\Z)              # block comment
    |(?P<word>[A-Za-z_][A-Za-z0-9_]*)
    |(?P<other>\S)""",
    re.VERBOSE | re.DOTALL,
)


def own_format(query: str) -> str | None:
    """The name in a trailing top-level ``FORMAT <name>`` clause (before any trailing semicolons), or
    None when the query leaves the output format to the client."""
    tokens: list[tuple[str, int]] = []  # (word or punctuation, parenthesis depth)
    depth = 0
    for match in _TOKEN.finditer(query):
        if match["word"]:
            tokens.append((match["word"], depth))
        elif other := match["other"]:
            depth += other == "("
            depth -= other == ")"
            tokens.append((other, depth))
        # Literals and comments are not tokens of the statement's shape.
    while tokens and tokens[-1][0] == ";":
        tokens.pop()
    if len(tokens) >= 2:
        (keyword, d1), (name, d2) = tokens[-2], tokens[-1]
        if keyword.upper() == "FORMAT" and d1 == d2 == 0 and re.fullmatch(r"[A-Za-z_]\w*", name):
            return name
    return None
