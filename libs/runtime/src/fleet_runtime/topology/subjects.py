"""NATS subject patterns: does one pattern cover or overlap another (`*` one word, `>` the rest)."""

from __future__ import annotations

import re

_TOKEN_RE = re.compile(r"^[^\s.*>]+$")


def subject_problem(subject: str) -> str | None:
    """Why `subject` is not a valid subject pattern, or None when it is."""
    if not subject:
        return "a subject cannot be empty"
    tokens = subject.split(".")
    for index, word in enumerate(tokens):
        if word == ">":
            if index != len(tokens) - 1:
                return f"'>' must be the last word in {subject!r}"
        elif word != "*" and not _TOKEN_RE.match(word):
            return (
                f"bad word {word!r} in {subject!r} (no spaces, empty tokens or partial wildcards)"
            )
    return None


def covers(outer: str, inner: str) -> bool:
    """True when every subject that `inner` matches is also matched by `outer`."""
    outer_tokens = outer.split(".")
    inner_tokens = inner.split(".")
    for index, word in enumerate(outer_tokens):
        if word == ">":
            return len(inner_tokens) > index
        if index >= len(inner_tokens):
            return False
        other = inner_tokens[index]
        if other == ">":
            return False
        if word not in ("*", other):
            return False
    return len(inner_tokens) == len(outer_tokens)


def overlaps(first: str, second: str) -> bool:
    """True when at least one concrete subject matches both patterns."""
    a_tokens = first.split(".")
    b_tokens = second.split(".")
    for index in range(max(len(a_tokens), len(b_tokens))):
        a = a_tokens[index] if index < len(a_tokens) else None
        b = b_tokens[index] if index < len(b_tokens) else None
        if a is None or b is None:
            # Different word counts and no `>` seen yet; `>` itself needs at least one word.
            return False
        if a == ">" or b == ">":
            return True
        if a != "*" and b not in ("*", a):
            return False
    return True


def covered_by_any(patterns: list[str], subject: str) -> bool:
    """True when one of `patterns` covers `subject`."""
    return any(covers(pattern, subject) for pattern in patterns)
