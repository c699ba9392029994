"""Market history: candles read across the hot (Redis), warm (MongoDB) and cold (S3) tiers.

A library for what reads history (a backtester, an API, ``fleet candles``); no worker
imports it.
"""

from fleet_history.cold import ParquetCandles, s3_filesystem
from fleet_history.hot import RedisCandles
from fleet_history.model import Candle, Gap, HistoryError, Tier
from fleet_history.stitch import Report, Served, check_range, read_candles
from fleet_history.warm import MongoCandles

__all__ = [
    "Candle",
    "Gap",
    "HistoryError",
    "MongoCandles",
    "ParquetCandles",
    "RedisCandles",
    "Report",
    "Served",
    "Tier",
    "check_range",
    "read_candles",
    "s3_filesystem",
]
