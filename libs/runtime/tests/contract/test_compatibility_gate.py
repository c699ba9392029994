"""The compatibility gate: a payload change that breaks readers fails, naming event and field."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, ClassVar

import pytest
import yaml
from pydantic import Field
from runtime_testkit.cli import REPO, FleetRunner

from fleet_events import (
    EVENT_TYPES,
    UPCASTERS,
    NonNegativeDecimal,
    Payload,
    PositiveDecimal,
    Side,
    SubjectToken,
    UpcasterRegistry,
    UtcDatetime,
)
from fleet_runtime.contract import build_document, current_inputs, incompatibilities, render
from fleet_runtime.contract import document as contract_document

STREAMS = REPO / "streams.yaml"
COMMITTED = REPO / "docs" / "asyncapi.yaml"


class _Fill(Payload):
    """trade.executed v2 as the registry has it; the variants below change one thing each."""

    event_type: ClassVar[str] = "trade.executed"
    schema_version: ClassVar[int] = 2
    subject_fields: ClassVar[tuple[str, ...]] = ("bot_id",)
    key_field: ClassVar[str] = "bot_id"

    order_id: Annotated[str, Field(min_length=1)]
    bot_id: SubjectToken
    user_id: Annotated[str, Field(min_length=1)]
    symbol: SubjectToken
    trade_id: Annotated[str, Field(min_length=1)]
    side: Side
    quantity: PositiveDecimal
    fee: NonNegativeDecimal
    fee_currency: Annotated[str, Field(min_length=1, max_length=10)]
    executed_at: UtcDatetime


class WithoutPrice(_Fill):
    """The price field is gone."""


class PriceAsFloat(_Fill):
    """The price became a JSON number."""

    price: float


class WithVenue(_Fill):
    """A new required field."""

    price: PositiveDecimal
    venue: str


class WithOptionalVenue(_Fill):
    """A new optional field: additive."""

    price: PositiveDecimal
    venue: str | None = None


class WideSide(StrEnum):
    BUY = "BUY"
    SELL = "SELL"
    SHORT = "SHORT"


class WithWiderSide(_Fill):
    """One more enum value: additive."""

    price: PositiveDecimal
    side: WideSide  # type: ignore[assignment]


class PriceAsFloatV3(PriceAsFloat):
    """The same retyping, with a new schema version."""

    schema_version: ClassVar[int] = 3


def changed(payload: type[Payload], upcasters: UpcasterRegistry = UPCASTERS) -> dict[str, Any]:
    """The document of the registry with trade.executed replaced by ``payload``."""
    inputs = current_inputs(STREAMS)
    registry = {**EVENT_TYPES, payload.event_type: payload}
    return build_document(type(inputs)(registry, upcasters, inputs.topology, inputs.workers))


def problems(new: dict[str, Any]) -> list[str]:
    return [str(item) for item in incompatibilities(build_document(current_inputs(STREAMS)), new)]


def test_the_current_registry_is_compatible_with_itself() -> None:
    assert problems(build_document(current_inputs(STREAMS))) == []


def test_a_removed_field_is_named() -> None:
    assert problems(changed(WithoutPrice)) == [
        "trade.executed v2 field data.price: was removed (stored events and old producers "
        "still send it)"
    ]


def test_a_retyped_field_is_named() -> None:
    (problem,) = problems(changed(PriceAsFloat))
    assert problem.startswith("trade.executed v2 field data.price: changed from string (")
    assert problem.endswith(" to number")


def test_a_new_required_field_is_named() -> None:
    assert problems(changed(WithVenue)) == [
        "trade.executed v2 field data.venue: is new and required (stored events lack it): "
        "make it optional"
    ]


def test_additive_changes_pass() -> None:
    assert problems(changed(WithOptionalVenue)) == []
    assert problems(changed(WithWiderSide)) == []


def test_a_new_version_needs_an_upcaster_chain() -> None:
    assert problems(changed(PriceAsFloatV3)) == [
        "trade.executed v2 field schema_version: bumped to 3 without an upcaster chain from 2: "
        "stored v2 events would no longer decode"
    ]
    upcasters = UPCASTERS.copy()
    upcasters.add("trade.executed", 2, lambda data: {**data, "price": float(data["price"])})
    assert problems(changed(PriceAsFloatV3, upcasters)) == []


def test_a_removed_event_type_is_named() -> None:
    inputs = current_inputs(STREAMS)
    registry = {t: p for t, p in EVENT_TYPES.items() if t != "trade.failed"}
    new = build_document(type(inputs)(registry, UPCASTERS, inputs.topology, inputs.workers))
    assert problems(new) == [
        "trade.failed v1: the event type was removed; events already in the streams would no "
        "longer decode"
    ]


@pytest.fixture
def incompatible_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's registry, as if someone had deleted TradeExecuted.price."""
    monkeypatch.setattr(
        contract_document, "EVENT_TYPES", {**EVENT_TYPES, "trade.executed": WithoutPrice}
    )


@pytest.mark.usefixtures("incompatible_registry")
def test_check_fails_on_an_incompatible_payload(fleet_cli: FleetRunner) -> None:
    result = fleet_cli("contract", "check")

    assert result.code == 1
    lines = result.err.splitlines()
    assert lines[0] == (
        "incompatible with docs/asyncapi.yaml: 1 change would break readers of the previous version"
    )
    assert lines[1] == (
        "  trade.executed v2 field data.price: was removed (stored events and old producers "
        "still send it)"
    )
    assert lines[2].startswith("fix: restore the field as it was, or bump the payload class's")


@pytest.mark.usefixtures("incompatible_registry")
def test_generate_refuses_an_incompatible_payload(fleet_cli: FleetRunner, tmp_path: Path) -> None:
    target = tmp_path / "asyncapi.yaml"
    target.write_text(COMMITTED.read_text())

    refused = fleet_cli("contract", "generate", "--doc", str(target))
    assert refused.code == 1
    assert "trade.executed v2 field data.price: was removed" in refused.err
    assert target.read_text() == COMMITTED.read_text()

    forced = fleet_cli("contract", "generate", "--doc", str(target), "--allow-breaking")
    assert forced.code == 0, forced.err
    written = yaml.safe_load(target.read_text())["components"]["schemas"]
    assert "price" not in written["WithoutPrice"]["properties"]
    assert "TradeExecuted" not in written


@pytest.mark.usefixtures("incompatible_registry")
def test_check_against_a_baseline_catches_a_regenerated_file(
    fleet_cli: FleetRunner, tmp_path: Path
) -> None:
    # Someone regenerated the file after the breaking change: it now matches the code,
    # so only the earlier copy (main's) shows the break.
    regenerated = tmp_path / "asyncapi.yaml"
    inputs = contract_document.current_inputs(STREAMS)
    regenerated.write_text(render(build_document(inputs)))
    assert fleet_cli("contract", "check", "--doc", str(regenerated)).code == 0

    result = fleet_cli("contract", "check", "--doc", str(regenerated), "--baseline", str(COMMITTED))
    assert result.code == 1
    assert "trade.executed v2 field data.price: was removed" in result.err
