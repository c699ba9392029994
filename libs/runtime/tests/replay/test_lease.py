"""A replay's lease: renewed while the replay runs, a busy store never ends it with a traceback."""

from __future__ import annotations

import asyncio

import pytest

from fleet_runtime.replay.lock import renewed
from fleet_testing.waiting import wait_until


async def test_renewals_go_on_after_a_failed_one_and_a_failed_release_is_not_raised(
    capsys: pytest.CaptureFixture[str],
) -> None:
    calls: list[str] = []
    third = asyncio.Event()

    async def renew() -> None:
        calls.append("renew")
        if len(calls) == 1:
            raise TimeoutError("store busy")
        if len(calls) == 3:
            third.set()

    async def release() -> None:
        calls.append("release")
        raise ConnectionError("store gone")

    async with renewed(renew, release, every_s=0.01, lock="k"):
        await asyncio.wait_for(third.wait(), 5)
    assert calls[-1] == "release"
    assert calls.count("release") == 1
    out = capsys.readouterr()
    text = out.out + out.err
    assert "replay_lease_not_renewed" in text
    assert "TimeoutError: store busy" in text
    assert "replay_lease_not_released" in text


async def test_the_renewals_stop_with_the_block() -> None:
    renewals = 0

    async def renew() -> None:
        nonlocal renewals
        renewals += 1

    async def release() -> None:
        return None

    async with renewed(renew, release, every_s=0.01, lock="k"):
        await wait_until(lambda: renewals >= 2, 5, "two renewals")
    after = renewals
    # An absence: nothing may renew after the block, so this wait is the check itself.
    await asyncio.sleep(0.05)
    assert after >= 2
    assert renewals == after
