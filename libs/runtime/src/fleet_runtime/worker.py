"""Run a worker process: connect, bind consumers, serve health, consume until SIGTERM."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace

from nats.aio.client import Client as NATS
from nats.errors import TimeoutError as NatsTimeoutError
from prometheus_client import CollectorRegistry

from fleet_runtime.consume import ConsumerLoop, Readiness, Subscription
from fleet_runtime.errors import StoreUnavailable
from fleet_runtime.health import HealthServer
from fleet_runtime.heap import settle_heap
from fleet_runtime.logs import get_logger
from fleet_runtime.metrics import WorkerMetrics
from fleet_runtime.natsauth import nats_auth
from fleet_runtime.natsconnect import connect_nats, permission_denials, permission_fix
from fleet_runtime.settings import WorkerSettings
from fleet_runtime.startup import (
    StartupRefused,
    server_of,
    startup_timeout,
    store_server,
    wait_for,
)

log = get_logger("fleet_runtime.worker")

# Services import the connection from here.
__all__ = ["connect_nats", "partitioned", "serve", "worker_nats"]


async def worker_nats(settings: WorkerSettings, name: str, *, user: str | None = None) -> NATS:
    """The worker's NATS connection, waited for up to its ``STARTUP_TIMEOUT_S``.

    It presents the credentials of ``user`` (default: ``name``, the worker) from the
    settings' ``nats_creds`` and ``nats_tls_*``.
    """
    return await connect_nats(
        settings.nats_url,
        name,
        server=server_of(settings, "nats_url", "NATS"),
        timeout_s=startup_timeout(settings),
        auth=nats_auth(settings, user or name),
    )


def partitioned(subs: Sequence[Subscription], partition: int | None) -> list[Subscription]:
    """Bind each subscription to one partition's durable (``<durable>-p<k>``)."""
    if partition is None:
        return list(subs)
    return [replace(s, durable=f"{s.durable}-p{partition}") for s in subs]


async def serve(
    *,
    worker: str,
    settings: WorkerSettings,
    subscriptions: Sequence[Subscription],
    store_probe: Callable[[], Awaitable[None]] | None = None,
    partition: int | None = None,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[int], None] | None = None,
    registry: CollectorRegistry | None = None,
) -> None:
    """Consume every subscription until SIGTERM/SIGINT (or ``stop``), then close cleanly.

    ``store_probe`` is awaited before consuming: while it raises ``StoreUnavailable`` the
    store is waited for (``fleet_runtime.startup``); other errors stop the start-up.
    ``on_ready`` receives the health server's port once everything is bound.
    ``registry`` lets a service put its own metrics on the same /metrics page.
    Once ready it settles the garbage collector for the whole process
    (``fleet_runtime.heap``): a worker owns its process.
    """
    stop = stop or asyncio.Event()
    nc = await worker_nats(settings, worker)
    js = nc.jetstream()
    metrics = WorkerMetrics(registry)
    readiness = Readiness()
    loops = [
        ConsumerLoop(
            worker=worker,
            nc=nc,
            js=js,
            subscription=sub,
            metrics=metrics,
            readiness=readiness,
            batch_size=settings.batch_size,
            batch_max_wait_s=settings.batch_max_wait_ms / 1000,
        )
        for sub in partitioned(subscriptions, partition)
    ]

    def is_ready() -> tuple[bool, str]:
        ready, why = readiness.check(nc)
        metrics.ready.labels(worker).set(1 if ready else 0)
        return ready, why

    health = HealthServer(metrics.registry, is_ready, settings.health_host, settings.health_port)
    running = asyncio.get_running_loop()
    try:
        try:
            for loop in loops:
                await loop.bind()
        except NatsTimeoutError:
            denied = permission_denials(nc)
            if not denied:
                raise
            # The server drops a request it refuses: say which permission, not "timeout".
            raise StartupRefused(
                f"NATS refused {denied[-1]} to the credentials of {worker}",
                fix=permission_fix(nats_auth(settings, worker)),
            ) from None
        store = store_server(settings)
        if store_probe is not None and store is not None:
            await wait_for(
                store,
                store_probe,
                timeout_s=startup_timeout(settings),
                retry_on=(StoreUnavailable,),
            )
        elif store_probe is not None:
            await store_probe()
        readiness.bound = True
        await health.start()
        settle_heap(settings.gc_gen0_threshold)
        for sig in (signal.SIGTERM, signal.SIGINT):
            running.add_signal_handler(sig, stop.set)
        log.info(
            "worker_ready",
            worker=worker,
            health_port=health.port,
            consumers=[lp.binding.durable for lp in loops if lp.binding],
        )
        if on_ready is not None:
            on_ready(health.port)
        tasks = [asyncio.create_task(lp.run(), name=f"consume-{worker}") for lp in loops]
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
        log.info("worker_stopping", worker=worker)
        for lp in loops:
            lp.request_stop()
        finished, unfinished = await asyncio.wait(tasks, timeout=settings.shutdown_timeout_s)
        for task in unfinished:
            log.warning("worker_stop_deadline_passed", worker=worker)
            task.cancel()
        stopper.cancel()
        for task in finished:
            error = None if task.cancelled() else task.exception()
            if error is not None:
                raise error
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            running.remove_signal_handler(sig)
        await health.close()
        if nc.is_connected:
            await nc.drain()
        log.info("worker_stopped", worker=worker)
