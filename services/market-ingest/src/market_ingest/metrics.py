"""Prometheus metrics of market-ingest itself (the runtime exports the consumer metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter


class MarketIngestMetrics:
    """Counters of late, duplicate and applied ticks, published candles and state reloads."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.late_skipped = Counter(
            "market_ingest_late_ticks_skipped",
            "Ticks too old for a series (candle interval, or the 24h window): not applied there.",
            ("scope",),
            registry=self.registry,
        )
        self.duplicates = Counter(
            "market_ingest_duplicate_ticks",
            "Redelivered ticks at or below the symbol's stored sequence: changed nothing.",
            registry=self.registry,
        )
        self.applied = Counter(
            "market_ingest_ticks_applied",
            "Ticks applied to Redis.",
            registry=self.registry,
        )
        self.candles_published = Counter(
            "market_ingest_candles_published",
            "Closed candles published to MARKET (duplicates dropped by the stream included).",
            ("interval",),
            registry=self.registry,
        )
        self.state_reloads = Counter(
            "market_ingest_state_reloads",
            "Symbols whose cached state no longer matched Redis and was read again.",
            registry=self.registry,
        )
