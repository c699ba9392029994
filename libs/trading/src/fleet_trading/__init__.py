"""fleet_trading: the trading math several workers share (positions, PnL, metrics), no I/O."""

from fleet_trading.positions import (
    AVERAGE_PRICE_EXPONENT,
    EXACT,
    FillLike,
    FillResult,
    KeyedFill,
    Position,
    PositionKey,
    PositionSide,
    apply_fills,
)

__all__ = [
    "AVERAGE_PRICE_EXPONENT",
    "EXACT",
    "FillLike",
    "FillResult",
    "KeyedFill",
    "Position",
    "PositionKey",
    "PositionSide",
    "apply_fills",
]
