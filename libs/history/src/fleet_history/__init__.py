"""Market history: candles read across the hot (Redis) and warm (MongoDB) tiers.

A library for what reads history (a backtester, an API, ``fleet candles``); no worker
imports it.
"""

from fleet_history.hot import RedisCandles
from fleet_history.model import Candle, HistoryError, Tier
from fleet_history.stitch import Report, Served, check_range, read_candles
from fleet_history.warm import MongoCandles

__all__ = [
    "Candle",
    "HistoryError",
    "MongoCandles",
    "RedisCandles",
    "Report",
    "Served",
    "Tier",
    "check_range",
    "read_candles",
]
