"""Reading, redriving and deleting dead letters on the DLQ stream (what `fleet dlq` runs)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError

from fleet_events import DLQ_STREAM, DLQ_SUBJECTS, DecodeError, decode, dlq_filter
from fleet_runtime.deadletter import DeadLetter
from fleet_runtime.errors import UserError
from fleet_runtime.topology.subjects import covers


class DeadLetterMissing(UserError):
    """No dead letter with the asked sequence is on the DLQ stream."""


async def _check_stream(js: JetStreamContext) -> tuple[int, int]:
    try:
        info = await js.stream_info(DLQ_STREAM)
    except NotFoundError:
        raise UserError(
            f"stream {DLQ_STREAM} does not exist on the server",
            fix="run `fleet topology apply` to create the streams declared in streams.yaml",
        ) from None
    return info.state.first_seq, info.state.last_seq


async def list_letters(
    js: JetStreamContext,
    *,
    worker: str | None = None,
    subject: str | None = None,
    limit: int | None = None,
) -> list[DeadLetter]:
    """Dead letters oldest first, optionally of one worker and/or original subject pattern."""
    first, last = await _check_stream(js)
    wanted = dlq_filter(worker) if worker else DLQ_SUBJECTS
    found: list[DeadLetter] = []
    seq = max(first, 1)
    while seq <= last and (limit is None or len(found) < limit):
        try:
            raw = await js.get_msg(DLQ_STREAM, seq, subject=wanted, next=True)
        except NotFoundError:
            break
        assert raw.seq is not None
        letter = DeadLetter.from_message(raw.headers, raw.data or b"", raw.seq)
        if subject is None or covers(subject, letter.subject):
            found.append(letter)
        seq = raw.seq + 1
    return found


async def get_letter(js: JetStreamContext, dlq_seq: int) -> DeadLetter:
    """The dead letter stored at ``dlq_seq``."""
    await _check_stream(js)
    try:
        raw = await js.get_msg(DLQ_STREAM, dlq_seq)
    except NotFoundError:
        raise DeadLetterMissing(
            f"no dead letter at {DLQ_STREAM} sequence {dlq_seq}",
            fix="list the dead letters with `fleet dlq list`",
        ) from None
    return DeadLetter.from_message(raw.headers, raw.data or b"", dlq_seq)


async def select_letters(
    js: JetStreamContext,
    seqs: Sequence[int],
    *,
    all_letters: bool,
    worker: str | None,
    subject: str | None = None,
) -> list[DeadLetter]:
    """The letters a redrive or purge acts on: the given sequences, or every match."""
    if seqs and all_letters:
        raise UserError("give DLQ sequences or --all, not both")
    if seqs:
        letters = [await get_letter(js, s) for s in seqs]
        return [
            x
            for x in letters
            if (worker is None or x.worker == worker)
            and (subject is None or covers(subject, x.subject))
        ]
    if not all_letters and worker is None and subject is None:
        raise UserError(
            "say which dead letters: DLQ sequences, --all, --worker or --subject",
            fix="see them first with `fleet dlq list`",
        )
    return await list_letters(js, worker=worker, subject=subject)


def original_event_id(letter: DeadLetter) -> str | None:
    """The event id of the original message, from its header or its body if decodable."""
    if letter.event_id:
        return letter.event_id
    try:
        return str(decode(letter.data).id)
    except DecodeError:
        return None


def redrive_msg_id(letter: DeadLetter) -> str:
    """``<event id>:redrive:<dlq seq>``: new to the duplicate window, one per dead letter."""
    base = original_event_id(letter) or f"{letter.stream}:{letter.seq}"
    return f"{base}:redrive:{letter.dlq_seq}"


@dataclass(frozen=True)
class Redriven:
    """One redriven dead letter and where its copy landed."""

    letter: DeadLetter
    stream: str
    seq: int


async def redrive(js: JetStreamContext, letter: DeadLetter) -> Redriven:
    """Publish the original bytes to the original subject, then delete the dead letter.

    The dead letter is deleted only after the stream acknowledged the copy: a failure in
    between leaves both, and a second redrive of the same letter reuses the message id,
    so the stream drops the copy inside its duplicate window.
    """
    assert letter.dlq_seq is not None
    ack = await js.publish(
        letter.subject, letter.data, headers={"Nats-Msg-Id": redrive_msg_id(letter)}
    )
    await delete_letter(js, letter.dlq_seq)
    return Redriven(letter, ack.stream, ack.seq)


async def delete_letter(js: JetStreamContext, dlq_seq: int) -> None:
    """Remove one dead letter (the DLQ stream denies purges; single deletes are allowed)."""
    try:
        await js.delete_msg(DLQ_STREAM, dlq_seq)
    except NotFoundError:
        raise DeadLetterMissing(f"no dead letter at {DLQ_STREAM} sequence {dlq_seq}") from None
