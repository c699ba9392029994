"""Single-byte mutations of valid messages, and the check that a two-lane decoder gives
the contract's verdict on every message.

A service that reads its hot event type through a canonical lane
(``fleet_events.canonical``) and everything else through the contract holds the two to
one rule: whatever the canonical lane accepts, the contract accepts with the same value;
whatever the contract refuses, the decoder refuses with the same error and reason.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

import pytest

from fleet_events import DecodeError

T = TypeVar("T")

ALPHABET = b'0123456789abcdefABCDEF.-:TZ"{},: _\\x'
"""Bytes a mutation writes: digits, hex, the JSON and ISO-8601 punctuation, an escape."""


def mutations(
    sources: Sequence[bytes], count: int, *, seed: int, alphabet: bytes = ALPHABET
) -> Iterator[bytes]:
    """``count`` messages, each one of ``sources`` with one byte replaced (60 %), inserted
    (20 %) or deleted (20 %) at a random place; the same ``seed`` gives the same ones."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
    for _ in range(count):
        raw = bytearray(rng.choice(sources))
        at = rng.randrange(len(raw))
        action = rng.random()
        if action < 0.6:
            raw[at] = rng.choice(alphabet)
        elif action < 0.8:
            raw.insert(at, rng.choice(alphabet))
        else:
            del raw[at]
        yield bytes(raw)


def edited(raw: bytes, edits: Iterable[tuple[bytes, bytes]]) -> list[bytes]:
    """One message per ``(old, new)`` edit: ``raw`` with ``old`` (which must be in it)
    replaced by ``new`` once."""
    out = []
    for old, new in edits:
        assert old in raw, (old, raw)
        assert old != new, old
        out.append(raw.replace(old, new, 1))
    return out


@dataclass
class Verdicts:
    """How many messages the contract accepted and refused, and the canonical lane took."""

    accepted: int = 0
    refused: int = 0
    fast_accepted: int = 0


def check_lanes(
    messages: Iterable[bytes],
    *,
    contract: Callable[[bytes], T],
    fast: Callable[[bytes], T | None],
    decode: Callable[[bytes], T],
    refusals: tuple[type[Exception], ...] = (DecodeError,),
) -> Verdicts:
    """Hold ``decode`` and its canonical lane ``fast`` to ``contract`` on every message.

    ``contract`` is the value the contract's decoding alone gives (raising one of
    ``refusals``); ``fast`` returns None where it steps aside. Asserts, per message:
    a value ``fast`` returns equals the contract's; ``decode`` returns the contract's
    value, or raises the contract's error with the same reason.
    """
    counts: Verdicts = Verdicts()
    for data in messages:
        expected: T | None = None
        error: Exception | None = None
        try:
            expected = contract(data)
        except refusals as exc:
            error = exc
        taken = fast(data)
        if taken is not None:
            counts.fast_accepted += 1
            assert error is None, (data, error)
            assert taken == expected, data
        if error is not None:
            counts.refused += 1
            with pytest.raises(refusals) as raised:
                decode(data)
            assert (type(raised.value), str(raised.value)) == (type(error), str(error)), data
        else:
            counts.accepted += 1
            assert decode(data) == expected, data
    return counts
