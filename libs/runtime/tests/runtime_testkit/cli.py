"""Run the real `fleet` entry point in the test process and keep what it printed."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from fleet_runtime.cli import main

REPO = Path(__file__).resolve().parents[4]


@dataclass(frozen=True)
class Run:
    """What one `fleet` command did: exit code, stdout, stderr."""

    code: int
    out: str
    err: str


FleetRunner = Callable[..., Run]


def fleet_runner(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> FleetRunner:
    """A function running `fleet ARGS` from the repository root through ``main``.

    ``main`` is what the console script calls, so user errors come out as they do for a
    person: `error:` and `fix:` lines on stderr and exit code 2.
    """

    def run(*args: str) -> Run:
        monkeypatch.chdir(REPO)
        monkeypatch.setattr(sys, "argv", ["fleet", *args])
        capsys.readouterr()
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run
