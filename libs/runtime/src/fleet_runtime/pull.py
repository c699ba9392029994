"""Callback-driven pull from one durable JetStream consumer, several requests in flight.

nats-py's ``fetch()`` costs an await per message and tops out near 20k msg/s on these
machines; a core subscription with a callback, fed by raw ``CONSUMER.MSG.NEXT`` requests
(each on its own inbox so its remaining count is exact), delivers several times faster.
Messages land in a bounded buffer that the worker drains in batches.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from fleet_runtime.logs import get_logger

log = get_logger("fleet_runtime.pull")

# Status codes the server sends on a pull inbox instead of a message.
_STATUS_NO_MESSAGES = "404"
_STATUS_TIMEOUT = "408"
_STATUS_CONFLICT = "409"
_STATUS_HEARTBEAT = "100"


@dataclass
class _Slot:
    """One outstanding pull request: its inbox and how many messages it may still deliver."""

    inbox: str
    sub: Subscription | None = None
    remaining: int = 0
    deadline: float = 0.0
    active: bool = False


class PullSource:
    """Keeps ``inflight`` pull requests open on a durable and buffers what they deliver.

    Back-pressure: a finished request is renewed only while the buffer holds fewer than
    ``high_water`` messages, so a slow handler never makes the worker hoard messages it
    cannot work on before their ack_wait runs out.
    """

    def __init__(
        self,
        nc: NATS,
        stream: str,
        durable: str,
        *,
        batch: int = 500,
        inflight: int = 2,
        expires_s: float = 5.0,
        high_water: int | None = None,
        on_conflict: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self._nc = nc
        self._subject = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}"
        self._batch = batch
        self._expires_ns = int(expires_s * 1e9)
        self._expires_s = expires_s
        self._high_water = high_water if high_water is not None else batch * max(inflight, 2)
        self._slots = [_Slot(inbox=nc.new_inbox()) for _ in range(inflight)]
        self._buffer: deque[Msg] = deque()
        self._arrived = asyncio.Event()
        self._closed = False
        self._paused = False
        self._watchdog: asyncio.Task[None] | None = None
        self._on_conflict = on_conflict
        self.stream = stream
        self.durable = durable

    async def start(self) -> None:
        """Subscribe every slot's inbox and send the first requests."""
        for slot in self._slots:
            slot.sub = await self._nc.subscribe(slot.inbox, cb=self._callback_for(slot))
            await self._request(slot)
        self._watchdog = asyncio.create_task(self._watch(), name=f"pull-watchdog-{self.durable}")

    async def close(self) -> None:
        """Stop requesting; messages still buffered are left unacked for redelivery."""
        self._closed = True
        self._arrived.set()
        if self._watchdog is not None:
            self._watchdog.cancel()
        for slot in self._slots:
            if slot.sub is not None:
                try:
                    await slot.sub.unsubscribe()
                except Exception as exc:
                    log.debug("pull_unsubscribe_failed", error=str(exc))

    def pause(self) -> None:
        """Stop renewing requests (store outage, shutdown); what is buffered stays buffered."""
        self._paused = True

    async def resume(self) -> None:
        """Renew every idle request."""
        self._paused = False
        await self._refill()

    @property
    def buffered(self) -> int:
        """Messages delivered and not yet taken by the worker."""
        return len(self._buffer)

    def held(self) -> list[Msg]:
        """The buffered messages (for in-progress heartbeats)."""
        return list(self._buffer)

    async def take(self, max_n: int, max_wait_s: float, idle_timeout_s: float) -> list[Msg]:
        """Up to ``max_n`` messages: waits for the first one (at most ``idle_timeout_s``),
        then at most ``max_wait_s`` more for the batch to fill."""
        if not self._buffer:
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), idle_timeout_s)
            except TimeoutError:
                return []
        if len(self._buffer) < max_n and not self._closed:
            deadline = time.monotonic() + max_wait_s
            while len(self._buffer) < max_n and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._arrived.clear()
                try:
                    await asyncio.wait_for(self._arrived.wait(), left)
                except TimeoutError:
                    break
        n = min(max_n, len(self._buffer))
        out = [self._buffer.popleft() for _ in range(n)]
        if len(self._buffer) < self._high_water:
            await self._refill()
        return out

    def _callback_for(self, slot: _Slot) -> Callable[[Msg], Awaitable[None]]:
        async def on_msg(msg: Msg) -> None:
            headers = msg.headers
            if headers and not msg.reply:
                status = headers.get("Status")
                if status == _STATUS_HEARTBEAT:
                    slot.deadline = time.monotonic() + self._expires_s + 2.0
                    return
                if status in (_STATUS_TIMEOUT, _STATUS_NO_MESSAGES):
                    slot.active = False
                elif status == _STATUS_CONFLICT:
                    slot.active = False
                    description = headers.get("Description", "")
                    log.warning("pull_conflict", durable=self.durable, description=description)
                    if self._on_conflict is not None:
                        await self._on_conflict(description)
                else:
                    slot.active = False
                    log.warning("pull_status", durable=self.durable, status=status)
                if not self._closed and len(self._buffer) < self._high_water:
                    await self._request(slot)
                return
            self._buffer.append(msg)
            slot.remaining -= 1
            if slot.remaining <= 0:
                slot.active = False
                if len(self._buffer) < self._high_water:
                    await self._request(slot)
            self._arrived.set()

        return on_msg

    async def _request(self, slot: _Slot) -> None:
        if self._closed or self._paused or slot.active:
            return
        slot.active = True
        slot.remaining = self._batch
        # A request lost with a dropped connection never answers: the watchdog renews it.
        slot.deadline = time.monotonic() + self._expires_s + 2.0
        body = json.dumps({"batch": self._batch, "expires": self._expires_ns}).encode()
        try:
            await self._nc.publish(self._subject, body, reply=slot.inbox)
        except Exception as exc:
            slot.active = False
            log.warning("pull_request_failed", durable=self.durable, error=str(exc))

    async def _refill(self) -> None:
        for slot in self._slots:
            if not slot.active:
                await self._request(slot)

    async def _watch(self) -> None:
        while not self._closed:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            for slot in self._slots:
                if slot.active and now > slot.deadline:
                    slot.active = False
            if len(self._buffer) < self._high_water:
                await self._refill()
