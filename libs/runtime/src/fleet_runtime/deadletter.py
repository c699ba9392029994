"""Dead letters: the original bytes plus why and where they failed, on the DLQ stream.

The body of a dead letter is the original message, byte for byte, so a redrive publishes
exactly what the producer sent. Everything else travels in headers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from nats.js.client import JetStreamContext

from fleet_events import dlq_subject

H_WORKER = "Fleet-Dlq-Worker"
H_STREAM = "Fleet-Dlq-Stream"
H_SEQ = "Fleet-Dlq-Seq"
H_SUBJECT = "Fleet-Dlq-Subject"
H_ERROR_CLASS = "Fleet-Dlq-Error-Class"
H_ERROR = "Fleet-Dlq-Error"
H_DELIVERIES = "Fleet-Dlq-Deliveries"
H_TIME = "Fleet-Dlq-Time"
H_EVENT_ID = "Fleet-Dlq-Event-Id"
H_MSG_ID = "Nats-Msg-Id"

_MAX_HEADER = 4000


def _header_safe(text: str) -> str:
    # Header values are one line: keep the message readable and bounded.
    flat = " ".join(text.split())
    return flat if len(flat) <= _MAX_HEADER else flat[: _MAX_HEADER - 3] + "..."


@dataclass(frozen=True)
class DeadLetter:
    """One dead-lettered message as stored in the DLQ stream."""

    worker: str
    stream: str
    seq: int
    subject: str
    error_class: str
    error: str
    deliveries: int
    time: datetime
    data: bytes
    event_id: str | None = None
    dlq_seq: int | None = None

    def headers(self) -> dict[str, str]:
        """NATS headers carrying the failure details."""
        hdr = {
            H_WORKER: self.worker,
            H_STREAM: self.stream,
            H_SEQ: str(self.seq),
            H_SUBJECT: self.subject,
            H_ERROR_CLASS: self.error_class,
            H_ERROR: _header_safe(self.error),
            H_DELIVERIES: str(self.deliveries),
            H_TIME: self.time.isoformat(),
            # One dead letter per (worker, stream position), even if the worker dead-letters
            # it again after a crash inside the duplicate window.
            H_MSG_ID: f"dlq:{self.worker}:{self.stream}:{self.seq}",
        }
        if self.event_id:
            hdr[H_EVENT_ID] = self.event_id
        return hdr

    @classmethod
    def from_message(
        cls, headers: dict[str, str] | None, data: bytes, dlq_seq: int | None = None
    ) -> DeadLetter:
        """Rebuild a dead letter from a DLQ message; missing headers read as unknown."""
        h = headers or {}
        return cls(
            worker=h.get(H_WORKER, "?"),
            stream=h.get(H_STREAM, "?"),
            seq=int(h.get(H_SEQ, "0") or 0),
            subject=h.get(H_SUBJECT, "?"),
            error_class=h.get(H_ERROR_CLASS, "?"),
            error=h.get(H_ERROR, ""),
            deliveries=int(h.get(H_DELIVERIES, "0") or 0),
            time=datetime.fromisoformat(h[H_TIME]) if H_TIME in h else datetime.now(UTC),
            data=data,
            event_id=h.get(H_EVENT_ID),
            dlq_seq=dlq_seq,
        )


async def publish_dead_letter(
    js: JetStreamContext, letter: DeadLetter, ack_timeout_s: float = 5.0
) -> None:
    """Store ``letter`` on the DLQ stream and wait for the server to confirm it."""
    await js.publish(
        dlq_subject(letter.worker, letter.subject),
        letter.data,
        headers=letter.headers(),
        timeout=ack_timeout_s,
    )
