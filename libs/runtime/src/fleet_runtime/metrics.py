"""Prometheus metrics of one worker process, in a registry of its own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_BATCH_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


class WorkerMetrics:
    """Counters, histograms and gauges every worker exports on /metrics."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        labels = ("worker", "stream", "consumer")
        self.processed = Counter(
            "fleet_events_processed",
            "Events committed to the store and acked.",
            labels,
            registry=self.registry,
        )
        self.skipped = Counter(
            "fleet_events_skipped",
            "Events skipped because the store checkpoint already covered them.",
            labels,
            registry=self.registry,
        )
        self.dead_lettered = Counter(
            "fleet_events_dead_lettered",
            "Events sent to the DLQ stream.",
            (*labels, "error_class"),
            registry=self.registry,
        )
        self.retried = Counter(
            "fleet_handler_retries",
            "Handler retries after an error on an event.",
            labels,
            registry=self.registry,
        )
        self.store_unavailable = Counter(
            "fleet_store_unavailable",
            "Batch attempts that found the store unreachable.",
            labels,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "fleet_batch_size",
            "Events per handler call.",
            labels,
            buckets=_BATCH_BUCKETS,
            registry=self.registry,
        )
        self.handle_seconds = Histogram(
            "fleet_handle_seconds",
            "Time of one handler call (store write and commit).",
            labels,
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.num_pending = Gauge(
            "fleet_consumer_num_pending",
            "Messages in the stream not yet delivered to the consumer (lag).",
            labels,
            registry=self.registry,
        )
        self.num_ack_pending = Gauge(
            "fleet_consumer_num_ack_pending",
            "Messages delivered and not yet acked.",
            labels,
            registry=self.registry,
        )
        self.ready = Gauge(
            "fleet_worker_ready",
            "1 when NATS and the store are reachable.",
            ("worker",),
            registry=self.registry,
        )
