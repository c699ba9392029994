"""Benchmark output: a Markdown table with ratios, the raw JSON, and a PNG chart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from bench import storeaware_report


def _n(value: float | None, unit: str = "") -> str:
    if value is None:
        return "—"
    return f"{value:,.0f}{unit}"


def _x(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}×"


def _sizes(doc: dict[str, Any], name: str) -> dict[str, Any]:
    """The sizes a target ran with (its own where it has them, else the run's)."""
    sizes: dict[str, Any] = doc["results"][name].get("sizes") or doc["sizes"]
    return sizes


def _met(ok: bool) -> str:
    return "met" if ok else "**not met**"


def _goal_lines(name: str, s: dict[str, Any], goals: dict[str, Any]) -> list[str]:
    lat = s.get("latency_ms") or {}
    p99 = lat.get("p99")
    bound = s.get("worker_over_bound")
    naive = s.get("worker_over_naive")
    rss = s.get("peak_rss_mb")
    return [
        f"- {name}: events/s ≥ {goals['over_bound']}× the lower limit ({s.get('binding')}): "
        f"{_x(bound)} — {_met(bound is not None and bound >= goals['over_bound'])}",
        f"- {name}: ≥ {goals['over_naive']:g}× the naive handler: {_x(naive)} — "
        f"{_met(naive is not None and naive >= goals['over_naive'])}",
        f"- {name}: p99 publish→acked ≤ {goals['p99_ms']:g} ms: "
        + ("—" if p99 is None else f"{p99:.1f} ms")
        + f" — {_met(p99 is not None and p99 <= goals['p99_ms'])}",
        f"- {name}: peak RSS ≤ {goals['rss_mb']:g} MB: "
        + ("—" if rss is None else f"{rss:.0f} MiB")
        + f" — {_met(rss is not None and rss <= goals['rss_mb'])}",
    ]


def _bounds(doc: dict[str, Any]) -> list[str]:
    lines = [
        "",
        "## Which bound binds",
        "",
        "Each worker against the lower of two limits measured in the same repetition: the "
        "raw consume+ack rate of its stream and its store's raw bulk write of what it "
        "writes (MongoDB: unordered bulk upserts of `trading_events` documents, 500 per "
        "call, into a collection with the worker's indexes; PostgreSQL: COPY of trade rows; "
        "Redis: pipelined HSET). Where the worker inserts what the raw write upserts, the "
        "same documents written as plain inserts are shown too (not a bound: the worker "
        "also writes other documents per batch).",
        "",
        "| worker | worker e2e | consume+ack limit | store raw write | binds | worker / store raw | worker / lower limit | store raw insert | worker / raw insert |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, res in doc["results"].items():
        s = res["summary"]
        if not s["implemented"]:
            continue
        lines.append(
            f"| {name} | {_n(s['worker'])} | {_n(s['limit'])} | {_n(s['store_raw'])} | "
            f"{s.get('binding', '—')} | {_x(s.get('worker_over_store_raw'))} | "
            f"{_x(s.get('worker_over_bound'))} | {_n(s.get('store_raw_insert'))} | "
            f"{_x(s.get('worker_over_store_raw_insert'))} |"
        )
    goals = [(n, r) for n, r in doc["results"].items() if r.get("goals")]
    if goals:
        lines += ["", "## Goals (medians of this run)", ""]
        for name, res in goals:
            lines += _goal_lines(name, res["summary"], res["goals"])
    lines += [
        "",
        "## Per repetition",
        "",
        "| worker | rep | worker e2e | limit | store raw | naive | / limit | / store raw | / lower limit | / naive | p50 | p99 | peak RSS |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, res in doc["results"].items():
        for k, r in enumerate(res["summary"].get("per_repetition") or [], 1):
            lat = r["latency_ms"] or {}
            p50 = f"{lat['p50']:.1f} ms" if lat else "—"
            p99 = f"{lat['p99']:.1f} ms" if lat else "—"
            lines.append(
                f"| {name} | {k} | {_n(r['worker'])} | {_n(r['limit'])} | "
                f"{_n(r['store_raw'])} | {_n(r['naive'])} | {_x(r['over_limit'])} | "
                f"{_x(r['over_store_raw'])} | {_x(r['over_bound'])} | {_x(r['over_naive'])} | "
                f"{p50} | {p99} | {r['peak_rss_mb']:.0f} MiB |"
            )
    return lines


def markdown(doc: dict[str, Any]) -> str:
    """The results as a Markdown page."""
    m = doc["machine"]
    lines = [
        f"# Tradefleet benchmark — {doc['date']}",
        "",
        f"Machine: {m['cpus']} CPUs, {m['memory_gib']} GiB, {m['platform']}, Python {m['python']}. "
        f"{doc['sizes']['reps']} repetition(s), medians quoted; ratios are computed within "
        f"each repetition (same servers, same data) and their median is shown. "
        f"Run took {doc['seconds']} s.",
        "",
        "## Throughput (events/s)",
        "",
        "| worker | worker e2e | limit (raw consume+ack) | worker / limit | naive (FastStream, 1 write/event) | worker / naive | fetch()+ack | worker / fetch | store raw write |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, res in doc["results"].items():
        s = res["summary"]
        worker = _n(s["worker"]) if s["implemented"] else "not implemented yet"
        lines.append(
            f"| {name} | {worker} | {_n(s['limit'])} | {_x(s.get('worker_over_limit'))} | "
            f"{_n(s['naive'])} | {_x(s.get('worker_over_naive'))} | {_n(s['fetch_ack_each'])} | "
            f"{_x(s.get('worker_over_fetch'))} | {_n(s['store_raw'])} |"
        )
    lines += [
        "",
        "## Consume methods on the same stream (msg/s)",
        "",
        "| stream of | fetch(500)+ack each | callback pull, ack each | callback pull, ack all | ordered push (replay) |",
        "|---|---|---|---|---|",
    ]
    for name, res in doc["results"].items():
        s = res["summary"]
        lines.append(
            f"| {name} | {_n(s['fetch_ack_each'])} | {_n(s['callback_pull_ack_each'])} | "
            f"{_n(s['callback_pull_ack_all'])} | {_n(s['ordered_push'])} |"
        )
    lines += [
        "",
        "## Replay (`fleet replay WORKER --all`): whole stream into a shadow, then the swap",
        "",
        "| worker | replay events/s | / ordered push (same run) | / live worker (same run) | whole replay events/s | swap pause |",
        "|---|---|---|---|---|---|",
    ]
    for name, res in doc["results"].items():
        rp = res["summary"].get("replay")
        if not rp:
            lines.append(f"| {name} | not measured | — | — | — | — |")
            continue
        lines.append(
            f"| {name} | {_n(rp['events_per_s'])} | {_x(rp['over_ordered_push'])} | "
            f"{_x(rp['over_worker'])} | {_n(rp['total_events_per_s'])} | "
            f"{rp['swap_pause_ms']:.1f} ms |"
        )
    lines += [
        "",
        "The replay reads the whole stream with an ordered push consumer and applies it "
        "through the worker's own store code into the shadow; its rate runs from the first "
        "event applied to the shadow caught up (as the worker's runs from its first commit "
        "to its last), the whole-replay rate also counts the shadow's set-up and the swap. "
        "The swap pause is how long live readers and the live "
        "worker wait for the tables (PostgreSQL), keys (Redis) or collections (MongoDB) to "
        "change over; the MongoDB-wire test server (secantusdb) moves a renamed collection "
        "document by document, so there it grows with the collections' size "
        "(docs/replay.md, `bench/mongo_swap.py`).",
        "",
        "## Latency and memory",
        "",
        "| worker | offered rate | publish→acked p50 | p99 | max | peak RSS |",
        "|---|---|---|---|---|---|",
    ]
    for name, res in doc["results"].items():
        s = res["summary"]
        lat = s.get("latency_ms")
        if lat:
            lines.append(
                f"| {name} | {_sizes(doc, name)['latency_rate']}/s | {lat['p50']:.1f} ms | "
                f"{lat['p99']:.1f} ms | {lat['max']:.1f} ms | {s['peak_rss_mb']:.0f} MiB |"
            )
        else:
            lines.append(f"| {name} | — | — | — | — | — |")
    lines += _bounds(doc)
    lines += storeaware_report.lines(doc)
    lines += [
        "",
        "## Scale-out: one worker process per partition (same events, fresh servers)",
        "",
        "| worker | partitions | events/s | / one process (same run) | / limit (one process) | worker CPU µs/event | sum CPU µs/event |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, res in doc["results"].items():
        so = res["summary"].get("scaleout")
        if not so:
            lines.append(f"| {name} | — | not measured | — | — | — | — |")
            continue
        cpu = so["cpu_us_per_event"]
        lines.append(
            f"| {name} | {so['partitions']} | {_n(so['events_per_s'])} | "
            f"{_x(so['over_single'])} | {_x(so['over_limit'])} | {cpu['worker']:.1f} | "
            f"{sum(cpu.values()):.1f} |"
        )
    lines += [
        "",
        "The stream is split by the subject's entity word (bot id for trades and bot "
        "events, symbol for ticks), so each entity's events stay in order in one partition. "
        "The limit is the single-process consume+ack rate of the table above.",
        "",
        "## Where the CPU goes (µs of CPU per event while draining the backlog)",
        "",
        "| worker | worker process | nats-server | store server | sum | cores busy at the measured rate |",
        "|---|---|---|---|---|---|",
    ]
    for name, res in doc["results"].items():
        s = res["summary"]
        cpu = s.get("cpu_us_per_event")
        if not cpu:
            lines.append(f"| {name} | — | — | — | — | — |")
            continue
        store = sum(v for k, v in cpu.items() if k not in ("worker", "nats-server"))
        total = sum(cpu.values())
        lines.append(
            f"| {name} | {cpu['worker']:.1f} | {cpu.get('nats-server', 0):.1f} | {store:.1f} | "
            f"{total:.1f} | {total * s['worker'] / 1e6:.2f} of {doc['machine']['cpus']} |"
        )
    lines += [
        "",
        "The sum bounds what this machine can do with the current code: at most "
        "CPUs × 10⁶ / sum events/s even with every process busy all the time. The worker "
        "process runs on one core, so 10⁶ / its figure is the most one process can reach.",
        "",
        "Limit = the faster of the two callback-driven pulls (two MSG.NEXT requests in "
        "flight); the consume methods read the first "
        f"{min(doc['sizes']['events'], doc.get('limit_events', 100_000)):,} events of the stream, the worker drains "
        f"all {doc['sizes']['events']:,}. The naive baseline handles a subset of the same events "
        f"({doc['sizes']['naive_events']:,}). Latency is measured from the publish call to "
        "the first poll (every 2 ms) of the consumer's ack floor covering the event: the "
        "worker acks after its store commit.",
        "",
    ]
    own = [n for n, r in doc["results"].items() if r.get("sizes") and r["sizes"] != doc["sizes"]]
    for name in own:
        z = _sizes(doc, name)
        lines += [
            f"{name} runs on its own sizes: it drains {z['events']:,} events, the naive "
            f"baseline handles {z['naive_events']:,}, latency is offered at "
            f"{z['latency_rate']}/s for {z['latency_seconds']} s, the raw store write "
            f"measures {min(z['events'], z['store_rows']):,} documents, "
            f"{z['reps']} repetition(s).",
            "",
        ]
    return "\n".join(lines)


def chart(doc: dict[str, Any], path: Path) -> None:
    """Throughput bars per worker, and latency percentiles."""
    names = list(doc["results"])
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    series = [
        ("fetch_ack_each", "fetch()+ack"),
        ("naive", "naive"),
        ("worker", "worker"),
        ("limit", "limit"),
    ]
    width = 0.2
    for k, (key, label) in enumerate(series):
        vals = [doc["results"][n]["summary"].get(key) or 0 for n in names]
        ax1.bar([i + k * width for i in range(len(names))], vals, width, label=label)
    ax1.set_xticks([i + 1.5 * width for i in range(len(names))], names)
    ax1.set_ylabel("events/s")
    ax1.set_title("Throughput (median)")
    ax1.legend()
    for n in names:
        lat = doc["results"][n]["summary"].get("latency_ms")
        if lat:
            ax2.plot(
                ["p50", "p99", "max"], [lat["p50"], lat["p99"], lat["max"]], marker="o", label=n
            )
    ax2.set_ylabel("ms")
    ax2.set_title("publish→acked latency (each worker's offered rate)")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_report(doc: dict[str, Any], out_dir: Path) -> Path:
    """Write results.md, results.json and results.png; return the Markdown path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(doc, indent=2, default=str) + "\n")
    chart(doc, out_dir / "results.png")
    md = out_dir / "results.md"
    md.write_text(markdown(doc))
    return md
