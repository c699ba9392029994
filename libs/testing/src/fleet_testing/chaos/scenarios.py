"""The faults: each scenario injects one kind of failure while the load runs.

A fault coroutine gets the rig, the run's sizes, a random source and a ``FaultLog`` on
which it notes what it did and when the system was whole again (``healed``): recovery
time is measured from there.
"""

from __future__ import annotations

import asyncio
import random
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from fleet_testing.chaos.backups import backup_under_faults
from fleet_testing.chaos.rig import Rig
from fleet_testing.chaos.workload import Mix
from fleet_testing.probes import http_json
from fleet_testing.servers import NatsServer
from fleet_testing.waiting import wait_until

LEAD_S = 2.0
"""Load before the first fault: the workers are busy when it lands."""
REPLICATED = ["BOTS", "TRADES", "MARKET"]
CAUGHT_UP_S = 5.0
"""Caught up: the lag of all consumers together at most this many seconds of traffic
(analytics-projector's MongoDB transactions keep one to two seconds of it in flight on a
busy machine, so one second was never reached with it running)."""


@dataclass(frozen=True)
class Sizes:
    """How long and how hard a run is (``--quick`` shortens the load and the outages;
    every fault still happens)."""

    rate: float
    """Messages per second the publisher sends."""
    load_s: float
    """Shortest load of a scenario; a fault that lasts longer extends it."""
    tail_s: float
    """Load kept up after the fault healed."""
    kills: int
    """kill -9 per worker in the kill scenario."""
    store_down_s: float
    node_down_s: float
    pause_s: float
    """SIGSTOP length; longer than the first ack wait (2 s) so the server redelivers."""
    partition_down_s: float
    drain_timeout_s: float
    loop_kills: int
    """kill -9 per worker process in the crash-loop scenario."""
    loop_gap_s: tuple[float, float]
    """Range of the random time between two kills of one process in the crash loop."""


QUICK = Sizes(
    rate=60,
    load_s=5,
    tail_s=2,
    kills=1,
    store_down_s=8,
    node_down_s=6,
    pause_s=6,
    partition_down_s=6,
    drain_timeout_s=120,
    loop_kills=3,
    loop_gap_s=(2.0, 6.0),
)
FULL = Sizes(
    rate=60,
    load_s=30,
    tail_s=10,
    kills=10,
    store_down_s=15,
    node_down_s=15,
    pause_s=10,
    partition_down_s=15,
    drain_timeout_s=300,
    loop_kills=10,
    loop_gap_s=(2.0, 12.0),
)


@dataclass
class FaultLog:
    """What a fault did, and when the system was whole again."""

    actions: list[str] = field(default_factory=list)
    healed: float | None = None
    backups: dict[str, str] = field(default_factory=dict)
    """Backups the fault asked for, by target (reconciled after the drain)."""

    def note(self, action: str) -> None:
        """Record one action (shown in the report)."""
        self.actions.append(action)

    def heal(self) -> None:
        """Mark the moment the last fault was lifted."""
        self.healed = time.monotonic()


Fault = Callable[[Rig, Sizes, random.Random, FaultLog], Awaitable[None]]


@dataclass(frozen=True)
class Scenario:
    """A named fault with the traffic mix it runs under."""

    name: str
    summary: str
    fault: Fault | None = None
    mix: Mix = field(default_factory=Mix)
    min_messages: int = 0
    """Publish at least this many (the malformed mix needs 400 for one of each kind)."""


async def kill_workers(rig: Rig, sizes: Sizes, rng: random.Random, log: FaultLog) -> None:
    """kill -9 each worker ``sizes.kills`` times at random moments, restarting it at once.

    Each kill waits until the fleet has caught up with the previous one (all consumers
    together within ``CAUGHT_UP_S`` of traffic): these are separate crashes;
    ``crash_loop`` kills without waiting.
    """
    names = rig.worker_names
    plan = [name for _ in range(sizes.kills) for name in rng.sample(names, k=len(names))]
    for name in plan:
        label = rng.choice(rig.labels(name))
        await rig.wait_ready(rig.workers[label])
        try:
            await wait_until(
                lambda: rig.caught_up(int(sizes.rate * CAUGHT_UP_S)),
                300,
                "the fleet to catch up",
                poll_s=0.25,
            )
        except AssertionError as exc:
            # Which consumer stayed behind, for the report.
            raise AssertionError(f"{exc}; lag per consumer: {await rig.lags()}") from None
        await asyncio.sleep(rng.uniform(0.3, 2.5))
        await rig.kill_worker(label)
        rig.restart_worker(label)
        log.heal()
    log.note(f"kill -9 x{sizes.kills} each: {', '.join(names)}")


async def crash_loop(rig: Rig, sizes: Sizes, rng: random.Random, log: FaultLog) -> None:
    """kill -9 every worker process ``sizes.loop_kills`` times, each process on its own
    random clock (``sizes.loop_gap_s`` apart, counted from its previous kill), restarted at
    once and never waited for: kills land while it starts, while it recovers the events
    the previous process held, and while it catches up.
    """
    labels = list(rig.workers)
    # One random source per process, drawn up front: the plan does not depend on timing.
    plans = {
        label: [rng.uniform(*sizes.loop_gap_s) for _ in range(sizes.loop_kills)] for label in labels
    }

    async def loop(label: str) -> None:
        for gap in plans[label]:
            await asyncio.sleep(gap)
            await rig.kill_worker(label)
            rig.restart_worker(label)

    await asyncio.gather(*(loop(label) for label in labels))
    low, high = sizes.loop_gap_s
    log.note(
        f"kill -9 x{sizes.loop_kills} each of {len(labels)} processes, every "
        f"{low:.0f}-{high:.0f}s, no wait for recovery"
    )
    log.heal()


def _store_down(kind: str) -> Fault:
    async def fault(rig: Rig, sizes: Sizes, rng: random.Random, log: FaultLog) -> None:
        server = rig.fleet.server(kind)
        await asyncio.to_thread(server.stop)
        await asyncio.sleep(sizes.store_down_s)
        await asyncio.to_thread(server.start)
        log.note(f"{kind} stopped {sizes.store_down_s:.0f}s")
        log.heal()

    return fault


def _node_down(leader: bool) -> Fault:
    async def fault(rig: Rig, sizes: Sizes, rng: random.Random, log: FaultLog) -> None:
        leaders = {(await rig.stream_leader(s)).name for s in REPLICATED}
        trades = await rig.stream_leader("TRADES")
        if leader:
            node = trades
        else:
            others = [n for n in rig.nats.nodes if n.name not in leaders]
            node = others[0] if others else next(n for n in rig.nats.nodes if n is not trades)
        await asyncio.to_thread(node.kill)
        await asyncio.sleep(sizes.node_down_s)
        await asyncio.to_thread(node.start)
        await rig.wait_replicas_current(REPLICATED)
        role = "TRADES leader" if leader else "non-leader"
        log.note(f"kill -9 {role} {node.name}, down {sizes.node_down_s:.0f}s")
        log.heal()

    return fault


async def _workers_node(rig: Rig) -> NatsServer:
    """The cluster node most worker processes are connected to."""

    def count(node: NatsServer) -> int:
        connz = http_json(node.host, node.monitor_port, "/connz")
        conns = connz.get("connections") if isinstance(connz, dict) else None
        names = [c.get("name", "") for c in conns or [] if isinstance(c, dict)]
        return sum(1 for n in names if any(n.startswith(w) for w in rig.worker_names))

    counts = await asyncio.to_thread(lambda: [count(n) for n in rig.nats.nodes])
    return rig.nats.nodes[counts.index(max(counts))]


async def kill_workers_node(rig: Rig, sizes: Sizes, rng: random.Random, log: FaultLog) -> None:
    """kill -9 the node the workers are connected to: deliveries in flight are lost."""
    node = await _workers_node(rig)
    await asyncio.to_thread(node.kill)
    await asyncio.sleep(sizes.node_down_s)
    await asyncio.to_thread(node.start)
    await rig.wait_replicas_current(REPLICATED)
    log.note(f"kill -9 {node.name} (most worker connections), down {sizes.node_down_s:.0f}s")
    log.heal()


async def pause_workers(rig: Rig, sizes: Sizes, rng: random.Random, log: FaultLog) -> None:
    """SIGSTOP every worker process past its ack wait, then SIGCONT."""
    labels = list(rig.workers)
    for label in labels:
        rig.signal_worker(label, signal.SIGSTOP)
    try:
        await asyncio.sleep(sizes.pause_s)
    finally:
        for label in labels:
            rig.signal_worker(label, signal.SIGCONT)
    log.note(f"SIGSTOP {len(labels)} processes {sizes.pause_s:.0f}s (ack wait 2s)")
    log.heal()


async def lose_partition(rig: Rig, sizes: Sizes, rng: random.Random, log: FaultLog) -> None:
    """kill -9 one partition process of trade-recorder; restart it later."""
    labels = rig.labels("trade-recorder")
    label = labels[-1]
    await rig.kill_worker(label)
    await asyncio.sleep(sizes.partition_down_s)
    worker = rig.restart_worker(label)
    log.heal()
    await rig.wait_ready(worker)
    log.note(f"kill -9 {label} (of {len(labels)}), down {sizes.partition_down_s:.0f}s")


SCENARIOS = [
    Scenario("steady", "no fault: the baseline"),
    Scenario("kill-workers", "kill -9 every worker at random moments", kill_workers),
    Scenario(
        "crash-loop",
        "every worker process killed again and again, faster than it recovers",
        crash_loop,
    ),
    Scenario("postgres-down", "PostgreSQL stopped, then started", _store_down("postgres")),
    Scenario("redis-down", "Redis stopped, then started", _store_down("redis")),
    Scenario("nats-leader", "the TRADES stream leader killed", _node_down(leader=True)),
    Scenario("nats-follower", "a NATS node leading no stream killed", _node_down(leader=False)),
    Scenario(
        "nats-workers-node",
        "the NATS node most workers are connected to killed",
        kill_workers_node,
    ),
    Scenario("sigstop", "every worker paused past its ack wait", pause_workers),
    Scenario(
        "duplicates",
        "10 % duplicate publishes: 5 % same message id, 5 % new id with the same fill/version",
        mix=Mix(duplicate_same_id=0.05, duplicate_new_id=0.05),
    ),
    Scenario(
        "malformed",
        "1 % malformed: bad JSON, unknown type, schema violation, unknown version",
        mix=Mix(malformed=0.01),
        min_messages=420,
    ),
    Scenario("partition-lost", "one trade-recorder partition process lost", lose_partition),
    Scenario(
        "backup",
        "PostgreSQL, MongoDB and stream backups taken under load while the projecting "
        "workers are killed; each restored and reconciled at its own checkpoints",
        backup_under_faults,
    ),
]
