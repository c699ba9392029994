"""`fleet publish`: validate an event against the contract, publish it, say where it was stored."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from nats.js.errors import NotFoundError

from fleet_events import Event, subject_for
from fleet_runtime.contract.publish_input import (
    DEFAULT_SOURCE,
    Target,
    build_event,
    load_data,
    parse_event_id,
    resolve_target,
)
from fleet_runtime.errors import UserError
from fleet_runtime.publisher import EventPublisher, PublishFailed
from fleet_runtime.security.grants import PUBLISHER
from fleet_runtime.topology import default_url, open_jetstream
from fleet_runtime.topology.connection import URL_ENV


@dataclass(frozen=True)
class _Request:
    target: Target
    data: dict[str, Any]
    source: str
    key: str | None
    event_id: str | None
    count: int
    rate: float | None

    def event(self) -> Event[Any]:
        return build_event(
            self.target, self.data, source=self.source, key=self.key, event_id=self.event_id
        )


async def _publish(server: str, request: _Request) -> tuple[int, int]:
    first = request.event()  # validated before connecting: a typo costs no round trip
    subject = subject_for(first)
    async with open_jetstream(server, user=PUBLISHER) as js:
        try:
            stream = await js.find_stream_name_by_subject(subject)
        except NotFoundError:
            raise UserError(
                f"no stream stores subject {subject}",
                fix="run `fleet topology apply` against this server (streams.yaml declares "
                "the streams)",
            ) from None
        # Few attempts: a person is waiting, and the id makes running it again safe.
        publisher = EventPublisher(js, attempts=3)
        stored = duplicates = 0
        start = time.monotonic()
        for index in range(request.count):
            if request.rate is not None:
                # Pace by the schedule, not by a fixed pause, so slow acks do not lower the rate.
                delay = start + index / request.rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            event = first if index == 0 else request.event()
            try:
                ack = await publisher.publish(event)
            except PublishFailed as exc:
                raise UserError(
                    f"{exc} (stored {stored} of {request.count} before it)",
                    fix=f"check that stream {stream} accepts publishes, then run the same "
                    "command again with --id for a message that may have been stored",
                ) from None
            state = "duplicate (already stored, not stored again)" if ack.duplicate else "stored"
            typer.echo(f"{subject}  id={event.id}  stream={ack.stream}  seq={ack.seq}  {state}")
            if ack.duplicate:
                duplicates += 1
            else:
                stored += 1
        return stored, duplicates


def publish(
    target: Annotated[
        str,
        typer.Argument(
            metavar="SUBJECT-OR-TYPE",
            help="Event type (trade.executed) or full subject (trade.executed.bot-1).",
        ),
    ],
    data: Annotated[
        str,
        typer.Option(
            "--data", "-d", help="The event's data as a JSON object, @FILE, or @- for stdin."
        ),
    ],
    count: Annotated[int, typer.Option(min=1, help="Publish this many events.")] = 1,
    rate: Annotated[
        float | None, typer.Option(min=0.001, help="Events per second (default: at once).")
    ] = None,
    event_id: Annotated[
        str | None,
        typer.Option(
            "--id", help="Envelope id and Nats-Msg-Id (to publish an event again); default: new."
        ),
    ] = None,
    key: Annotated[
        str | None, typer.Option(help="Envelope key (default: the type's key field).")
    ] = None,
    source: Annotated[str, typer.Option(help="Envelope source.")] = DEFAULT_SOURCE,
    server: Annotated[
        str | None,
        typer.Option("--server", "-s", help=f"NATS server URL (default: ${URL_ENV} or local)."),
    ] = None,
) -> None:
    """Validate an event against the contract, publish it with Nats-Msg-Id = its id, report it.

    Each line says the subject, the event id, the stream and sequence it was stored at,
    and whether the stream already had that id (a duplicate inside its window).
    """
    request = _Request(
        target=resolve_target(target),
        data=load_data(data),
        source=source,
        key=key,
        event_id=parse_event_id(event_id),
        count=count,
        rate=rate,
    )
    stored, duplicates = asyncio.run(_publish(server or default_url(), request))
    if count > 1:
        typer.echo(f"published {count}: {stored} stored, {duplicates} duplicates")
