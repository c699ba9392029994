"""The refill of older candles is the replay's: the worker process never loads
``fleet_history`` (nor pymongo or pyarrow through it)."""

from __future__ import annotations

import subprocess
import sys


def test_the_worker_and_its_replay_target_do_not_load_fleet_history() -> None:
    code = (
        "import sys, market_ingest.__main__, market_ingest.app, market_ingest.replay; "
        "print(sorted(m for m in ('fleet_history', 'pymongo', 'pyarrow') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
