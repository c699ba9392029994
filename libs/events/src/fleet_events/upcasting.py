"""Upcasters: functions that turn an old payload shape into the next version.

A breaking payload change bumps the class's ``schema_version`` and registers one
upcaster ``(type, from_version) -> from_version + 1`` here, so events already in a stream
still decode (and replay) as the current class. Decoding chains the steps
``v -> v+1 -> … -> current``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .errors import UnknownSchemaVersion

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
"""Takes the ``data`` object of version N (never mutates it) and returns version N+1."""


class UpcasterRegistry:
    """Upcasters keyed by ``(event type, from_version)``."""

    def __init__(self) -> None:
        self._steps: dict[tuple[str, int], Upcaster] = {}

    def register(self, event_type: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
        """Decorator: register the upcaster of ``event_type`` from ``from_version``."""

        def add(upcaster: Upcaster) -> Upcaster:
            self.add(event_type, from_version, upcaster)
            return upcaster

        return add

    def add(self, event_type: str, from_version: int, upcaster: Upcaster) -> None:
        """Register ``upcaster`` for ``event_type`` from ``from_version`` to the next."""
        if from_version < 1:
            raise ValueError("from_version must be >= 1")
        step = (event_type, from_version)
        if step in self._steps:
            raise ValueError(f"an upcaster for {event_type!r} v{from_version} already exists")
        self._steps[step] = upcaster

    def copy(self) -> UpcasterRegistry:
        """Return an independent registry with the same upcasters."""
        clone = UpcasterRegistry()
        clone._steps.update(self._steps)
        return clone

    def readable_versions(self, event_type: str, current: int) -> tuple[int, ...]:
        """Return the versions of ``event_type`` that decode as version ``current``, oldest first.

        ``current`` itself and every older version joined to it by an unbroken chain of
        upcasters.
        """
        oldest = current
        while oldest > 1 and (event_type, oldest - 1) in self._steps:
            oldest -= 1
        return tuple(range(oldest, current + 1))

    def upcast(
        self, event_type: str, data: dict[str, Any], from_version: int, to_version: int
    ) -> dict[str, Any]:
        """Apply the chain ``from_version -> … -> to_version`` to ``data``.

        Raises ``UnknownSchemaVersion`` if ``from_version`` is newer than ``to_version``
        or a step of the chain is missing.
        """
        if from_version > to_version:
            raise UnknownSchemaVersion(
                event_type,
                from_version,
                to_version,
                f"schema_version {from_version} of {event_type!r} is newer than the "
                f"newest this code knows ({to_version}); upgrade fleet-events",
            )
        for version in range(from_version, to_version):
            step = self._steps.get((event_type, version))
            if step is None:
                raise UnknownSchemaVersion(
                    event_type,
                    from_version,
                    to_version,
                    f"no upcaster from schema_version {version} to {version + 1} of "
                    f"{event_type!r} (current is {to_version})",
                )
            data = step(data)
        return data


UPCASTERS = UpcasterRegistry()
"""The upcasters shipped with the contract; ``decode`` uses these by default."""


@UPCASTERS.register("trade.executed", from_version=1)
def _trade_executed_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """trade.executed v1 -> v2: ``timestamp`` became ``executed_at``; ``side`` upper case.

    v2 aligns the payload with the ``trades`` table (``executed_at`` column, ``side`` in
    ``('BUY', 'SELL')``).
    """
    upcast = dict(data)
    if "timestamp" in upcast:
        upcast["executed_at"] = upcast.pop("timestamp")
    side = upcast.get("side")
    if isinstance(side, str):
        upcast["side"] = side.upper()
    return upcast
