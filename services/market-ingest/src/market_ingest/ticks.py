"""The form a tick takes inside market-ingest, and the decoder that produces it.

``Trade`` holds what the fold and the price messages need: the time in epoch
microseconds, the exact decimals, and their texts as the ``prices:{symbol}`` message
spells them (fixed-point decimals, ISO-8601 ``Z`` time).

``decode_trade`` has two lanes with one result:

- the canonical lane: bytes laid out exactly as ``fleet_events.encode`` writes a valid
  tick (fields in order, compact, plain decimal texts, ``Z`` times, no string escapes)
  are read with one regular expression; the texts are then already the message texts;
- the contract lane: anything else is decoded and validated by the event contract
  (``fleet_events.decode_as``), which raises the ``DecodeError`` that sends the message
  to the dead-letter stream, and the texts are computed from the values.

The canonical lane accepts only what the contract accepts, with the same values; where it
is not sure (another layout, a zero or exponent decimal, an impossible date) it steps
aside for the contract lane. Tests hold both to that on generated and mutated messages.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import NamedTuple

from fleet_events import MarketTick, decode_as
from fleet_events.canonical import (
    DECIMAL,
    FRACTION,
    SECOND,
    SUBJECT_WORD,
    TEXT,
    envelope,
    fullmatch,
)
from market_ingest.bars import dec, epoch_us, from_epoch_us, iso_us

_ZERO = Decimal(0)
_EPOCH = datetime(1970, 1, 1)
_SECOND_DELTA = timedelta(seconds=1)

# The payload as the encoder writes a valid tick (``fleet_events.canonical``): the
# symbol, price, quantity and trade time are captured, the time with its second and its
# fraction apart.
_CANONICAL = envelope(
    MarketTick.event_type,
    MarketTick.schema_version,
    r'"symbol":"(' + SUBJECT_WORD + r')","price":"(' + DECIMAL + r')",'
    r'"quantity":"(' + DECIMAL + r')","timestamp":"((' + SECOND + r")" + FRACTION + r'Z)",'
    r'"is_buyer_maker":(?:true|false),"trade_id":(?:null|"' + TEXT + r'*")',
)


class Trade(NamedTuple):
    """One tick as the fold uses it. ``id`` is the event id (text)."""

    id: str
    symbol: str
    us: int
    """Trade time, whole microseconds since the Unix epoch."""
    price: Decimal
    quantity: Decimal
    price_text: str
    quantity_text: str
    time_text: str

    @property
    def timestamp(self) -> datetime:
        """The trade time as a UTC datetime."""
        return from_epoch_us(self.us)

    @classmethod
    def of(cls, event_id: object, tick: MarketTick) -> Trade:
        """The trade of a validated tick (texts computed from the values)."""
        us = epoch_us(tick.timestamp)
        return cls(
            str(event_id),
            tick.symbol,
            us,
            tick.price,
            tick.quantity,
            dec(tick.price),
            dec(tick.quantity),
            iso_us(us),
        )


@lru_cache(maxsize=8192)
def _epoch_second(text: str) -> int:
    """Seconds since the epoch of ``YYYY-MM-DDTHH:MM:SS`` (UTC); ValueError if no such time."""
    return (datetime.fromisoformat(text) - _EPOCH) // _SECOND_DELTA


def canonical_trade(raw: bytes) -> Trade | None:
    """The trade in ``raw`` if it is a valid tick in canonical form, else None."""
    match = fullmatch(_CANONICAL, raw)
    if match is None:
        return None
    event_id, sent, _, symbol, price_text, qty_text, time_text, second, fraction = match.groups()
    try:
        _epoch_second(sent)
        us = _epoch_second(second) * 1_000_000
    except ValueError:
        return None
    if fraction is not None:
        us += int(fraction)
    price = Decimal(price_text)
    quantity = Decimal(qty_text)
    if not (price > _ZERO and quantity > _ZERO):
        return None
    return Trade(event_id, symbol, us, price, quantity, price_text, qty_text, time_text)


def decode_trade(raw: bytes) -> Trade:
    """The trade in a ``market.tick`` message.

    Raises ``fleet_events.DecodeError`` (malformed, invalid, or another event type) with
    the contract's reason.
    """
    trade = canonical_trade(raw)
    if trade is not None:
        return trade
    event = decode_as(raw, MarketTick)
    return Trade.of(event.id, event.data)
