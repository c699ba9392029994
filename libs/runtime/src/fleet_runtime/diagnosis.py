"""What `fleet doctor` reports per check, and what a service adds for its own store."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CheckResult:
    """One checked fact: passed or not, what was seen, and how to fix it when not."""

    check: str
    ok: bool
    detail: str = ""
    fix: str = ""

    @classmethod
    def passed(cls, check: str, detail: str = "") -> CheckResult:
        """A check that passed."""
        return cls(check, True, detail)

    @classmethod
    def failed(cls, check: str, detail: str, fix: str) -> CheckResult:
        """A check that failed, with the fix."""
        return cls(check, False, detail, fix)


StoreDiagnosis = Callable[[Any], Awaitable[Sequence[CheckResult]]]
"""A service's own checks of its store, given the worker's settings: reachable, credentials
accepted, migrations applied. Read-only, each bounded by a few seconds."""
