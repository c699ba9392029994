"""Who holds a replay: the text a store's replay lock records and a refused replay shows.

The lock itself lives in the store (a PostgreSQL advisory lock, a Redis key with a
lease): it must vanish with the process that held it, so a replay killed with ``kill -9``
never blocks the next one.
"""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime


def holder_name(worker: str) -> str:
    """``replay <worker> pid <pid> on <host> since <UTC time>``, at most 63 characters.

    63 is PostgreSQL's limit for ``application_name``, where the PostgreSQL adapter keeps it.
    """
    since = datetime.now(UTC).strftime("%H:%M:%SZ")
    host = socket.gethostname().split(".")[0][:16]
    return f"replay {worker} pid {os.getpid()} on {host} since {since}"[:63]
