"""The PostgreSQL workers' section of the report: store-aware limit, goals, saturation."""

from __future__ import annotations

from typing import Any

# Worker -> (events/s over the raw consume+ack limit, over the store-aware limit or None).
GOALS: dict[str, tuple[float, float | None]] = {
    "trade-recorder": (0.35, 0.6),
    "bot-lifecycle": (0.3, None),
}
P99_MS = 50.0
RSS_MB = 150.0


def _x(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}×"


def _n(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def _met(ok: bool) -> str:
    return "met" if ok else "**not met**"


def lines(doc: dict[str, Any]) -> list[str]:
    """Markdown lines; empty when no PostgreSQL worker was measured."""
    measured = [
        (name, res["summary"])
        for name, res in doc["results"].items()
        if res["summary"].get("store_aware") and res["summary"].get("implemented")
    ]
    if not measured:
        return []
    out = [
        "",
        "## PostgreSQL workers: the store-aware limit",
        "",
        "The store-aware limit writes the rows the worker writes for the same events (its "
        "tables and indexes, freshly migrated on the same server) by the fastest raw bulk "
        "path: rows built before the clock starts, COPY into a temporary table and one "
        "INSERT ... SELECT per table, 10,000 events per transaction, no NATS. The gap "
        "between it and the worker is the worker's own cost (consuming, decoding, folding, "
        "and transactions of one batch each).",
        "",
        "| worker | worker e2e | raw consume+ack | store-aware limit | worker / raw | "
        "worker / store-aware | 2 partitions | 2 partitions / raw | 2 partitions / store-aware |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, s in measured:
        so = s.get("scaleout") or {}
        out.append(
            f"| {name} | {_n(s['worker'])} | {_n(s['limit'])} | {_n(s['store_aware'])} | "
            f"{_x(s.get('worker_over_limit'))} | {_x(s.get('worker_over_store_aware'))} | "
            f"{_n(so.get('events_per_s'))} | {_x(so.get('over_limit'))} | "
            f"{_x(so.get('over_store_aware'))} |"
        )
    out += ["", "Per repetition (ratios within the repetition):", ""]
    out += [
        "| worker | rep | worker | raw | store-aware | / raw | / store-aware | 2 partitions |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, s in measured:
        for k, r in enumerate(s.get("per_repetition") or [], 1):
            out.append(
                f"| {name} | {k} | {_n(r['worker'])} | {_n(r['limit'])} | "
                f"{_n(r.get('store_aware'))} | {_x(r['over_limit'])} | "
                f"{_x(r.get('over_store_aware'))} | {_n(r.get('scaleout'))} |"
            )
    out += ["", "Goals (medians of this run):", ""]
    for name, s in measured:
        if name not in GOALS:
            continue
        over_raw, over_aware = GOALS[name]
        raw = s.get("worker_over_limit")
        out.append(
            f"- {name}: ≥ {over_raw}× the raw consume+ack limit: {_x(raw)} — "
            f"{_met(raw is not None and raw >= over_raw)}"
        )
        if over_aware is not None:
            aware = s.get("worker_over_store_aware")
            out.append(
                f"- {name}: ≥ {over_aware}× the store-aware limit: {_x(aware)} — "
                f"{_met(aware is not None and aware >= over_aware)}"
            )
        p99 = (s.get("latency_ms") or {}).get("p99")
        out.append(
            f"- {name}: p99 publish→acked ≤ {P99_MS:g} ms: "
            + ("—" if p99 is None else f"{p99:.1f} ms")
            + f" — {_met(p99 is not None and p99 <= P99_MS)}"
        )
        rss = s.get("peak_rss_mb")
        out.append(
            f"- {name}: peak RSS ≤ {RSS_MB:g} MB: "
            + ("—" if rss is None else f"{rss:.0f} MiB")
            + f" — {_met(rss is not None and rss <= RSS_MB)}"
        )
    out += _saturation(doc, measured)
    return out


def _saturation(doc: dict[str, Any], measured: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """Which resource binds: each process's CPU share at the measured rate."""
    cpus = doc["machine"]["cpus"]
    out = [
        "",
        "What binds (CPU per event while draining, and the share of a core each process "
        "used at the measured rate; a process at ~1.0 is saturated, the sum near the CPU "
        f"count ({cpus}) means the machine is; machine busy counts every process on the "
        "machine, so on a shared machine it shows how much CPU the others took):",
        "",
        "| worker | run | worker µs/event | nats-server µs/event | PostgreSQL µs/event | "
        "worker cores | nats-server cores | PostgreSQL cores | these 3 | machine busy |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, s in measured:
        runs = [("1 process", s.get("cpu_us_per_event"), s.get("worker"), s.get("machine_busy"))]
        so = s.get("scaleout")
        if so:
            runs.append(
                (
                    f"{so['partitions']} partitions",
                    so.get("cpu_us_per_event"),
                    so["events_per_s"],
                    so.get("machine_busy"),
                )
            )
        for label, cpu, rate, busy in runs:
            if not cpu or not rate:
                continue
            worker = cpu.get("worker", 0.0)
            nats = cpu.get("nats-server", 0.0)
            store = sum(v for k, v in cpu.items() if k not in ("worker", "nats-server"))
            out.append(
                f"| {name} | {label} | {worker:.1f} | {nats:.1f} | {store:.1f} | "
                f"{worker * rate / 1e6:.2f} | {nats * rate / 1e6:.2f} | "
                f"{store * rate / 1e6:.2f} | {(worker + nats + store) * rate / 1e6:.2f} | "
                + ("—" if busy is None else f"{busy * cpus:.2f} of {cpus}")
                + " |"
            )
    return out
