"""Callback-driven pull from one durable JetStream consumer, several requests in flight.

nats-py's ``fetch()`` costs an await per message and tops out near 20k msg/s on these
machines; a core subscription with a callback, fed by raw ``CONSUMER.MSG.NEXT`` requests,
delivers several times faster. Messages land in a bounded buffer that the worker drains
in batches.

Order: every request replies into ONE wildcard inbox subscription, so one callback task
sees the messages in the order the server sent them, which is the consumer's delivery
order, even with several requests open (the server spreads messages round-robin over the
waiting requests; separate subscriptions would each get their own task and interleave).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Awaitable, Callable

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from fleet_runtime.logs import get_logger

log = get_logger("fleet_runtime.pull")

# Status codes the server sends on a pull inbox instead of a message.
_STATUS_TIMEOUT = "408"
_STATUS_CONFLICT = "409"
_STATUS_HEARTBEAT = "100"
# How many of a finished request's messages were never delivered (sent with 408/409).
_PENDING_MSGS = "Nats-Pending-Messages"


class PullSource:
    """Keeps about ``inflight`` batches requested on a durable and buffers what arrives.

    Accounting: ``outstanding`` is what open requests may still deliver. Each message
    takes one off; a request that expires (408) or is cut short (409) reports how many of
    its messages it will never deliver. New requests are sent while less than
    ``inflight - 1`` batches remain outstanding and the buffer is below ``high_water``,
    so a slow handler never makes the worker hoard messages it cannot work on before
    their ack wait runs out.
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
        self._inflight = max(inflight, 1)
        self._expires_s = expires_s
        self._request_body = json.dumps({"batch": batch, "expires": int(expires_s * 1e9)}).encode()
        self._high_water = high_water if high_water is not None else batch * self._inflight
        self._inbox = nc.new_inbox()
        self._sub: Subscription | None = None
        self._requests = 0
        self._outstanding = 0
        self._last_activity = time.monotonic()
        self._buffer: deque[Msg] = deque()
        self._arrived = asyncio.Event()
        self._closed = False
        self._paused = False
        self._watchdog: asyncio.Task[None] | None = None
        self._on_conflict = on_conflict
        self.stream = stream
        self.durable = durable

    async def start(self) -> None:
        """Subscribe the inbox and send the first requests."""
        self._sub = await self._nc.subscribe(f"{self._inbox}.*", cb=self._on_msg)
        await self._refill()
        self._watchdog = asyncio.create_task(self._watch(), name=f"pull-watchdog-{self.durable}")

    async def close(self) -> None:
        """Stop requesting; messages still buffered are left unacked for redelivery."""
        self._closed = True
        self._arrived.set()
        if self._watchdog is not None:
            self._watchdog.cancel()
        if self._sub is not None:
            try:
                await self._sub.unsubscribe()
            except Exception as exc:
                log.debug("pull_unsubscribe_failed", error=str(exc))

    def pause(self) -> None:
        """Stop renewing requests (store outage, shutdown); what is buffered stays buffered."""
        self._paused = True

    async def resume(self) -> None:
        """Request again."""
        self._paused = False
        await self._refill()

    @property
    def paused(self) -> bool:
        """Whether requests are paused."""
        return self._paused

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
        await self._refill()
        return out

    async def poke(self) -> None:
        """Send one request even while paused (to let due redeliveries in)."""
        if self._closed or self._outstanding:
            return
        self._requests += 1
        self._outstanding += self._batch
        await self._nc.publish(
            self._subject, self._request_body, reply=f"{self._inbox}.{self._requests}"
        )

    async def _on_msg(self, msg: Msg) -> None:
        self._last_activity = time.monotonic()
        headers = msg.headers
        if headers and not msg.reply:
            status = headers.get("Status")
            if status == _STATUS_HEARTBEAT:
                return
            pending = headers.get(_PENDING_MSGS)
            if pending is not None and pending.isdigit():
                self._outstanding = max(self._outstanding - int(pending), 0)
            elif status == _STATUS_CONFLICT or status != _STATUS_TIMEOUT:
                # No count given: assume nothing is open any more; the worst case is one
                # batch requested twice, which max_ack_pending still bounds.
                self._outstanding = 0
            if status == _STATUS_CONFLICT:
                description = headers.get("Description", "")
                log.warning("pull_conflict", durable=self.durable, description=description)
                if self._on_conflict is not None:
                    await self._on_conflict(description)
            elif status != _STATUS_TIMEOUT:
                log.warning("pull_status", durable=self.durable, status=status)
            if status == _STATUS_TIMEOUT:
                await self._refill()
            # Any other status (409 Exceeded MaxWaiting or Leadership Change, 503 while a
            # stream has no leader) comes back at once: asking again at once made a busy
            # loop of requests and refusals (tens of thousands a second for minutes after
            # a leader change). The watchdog asks again within a second.
            return
        self._buffer.append(msg)
        self._outstanding -= 1
        if self._outstanding <= (self._inflight - 1) * self._batch:
            await self._refill()
        self._arrived.set()

    async def _refill(self) -> None:
        while (
            not self._closed
            and not self._paused
            and len(self._buffer) < self._high_water
            and self._outstanding <= (self._inflight - 1) * self._batch
        ):
            self._requests += 1
            self._outstanding += self._batch
            try:
                await self._nc.publish(
                    self._subject, self._request_body, reply=f"{self._inbox}.{self._requests}"
                )
            except Exception as exc:
                self._outstanding -= self._batch
                log.warning("pull_request_failed", durable=self.durable, error=str(exc))
                return

    async def _watch(self) -> None:
        while not self._closed:
            await asyncio.sleep(1.0)
            if self._outstanding and time.monotonic() - self._last_activity > self._expires_s + 2:
                # Open requests answer at least with a 408 when they expire: silence this
                # long means they were lost with a dropped connection.
                log.info("pull_requests_lost", durable=self.durable, outstanding=self._outstanding)
                self._outstanding = 0
                self._last_activity = time.monotonic()
            await self._refill()
