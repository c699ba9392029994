"""The committed contract file: gather the inputs, render YAML, read it back, list differences."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from fleet_events import EVENT_TYPES, UPCASTERS
from fleet_runtime.contract.asyncapi import ContractInputs
from fleet_runtime.contract.messages import Doc
from fleet_runtime.errors import ConfigError
from fleet_runtime.topology import load_topology
from fleet_runtime.workers import discover_workers

DEFAULT_PATH = Path("docs/asyncapi.yaml")

HEADER = (
    "# The Tradefleet event contract (AsyncAPI 3.0), generated from fleet_events, streams.yaml\n"
    "# and the installed workers by `fleet contract generate`. Do not edit by hand:\n"
    "# `fleet contract check` (CI) fails when this file and the code differ.\n"
)


def current_inputs(streams_file: Path) -> ContractInputs:
    """The registry, upcasters and workers of this environment, and ``streams_file``."""
    return ContractInputs(
        event_types=EVENT_TYPES,
        upcasters=UPCASTERS,
        topology=load_topology(streams_file),
        workers=discover_workers(),
    )


class _Dumper(yaml.SafeDumper):
    """Block style throughout; multi-line text as literal blocks, so the file reads as prose."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def render(doc: Doc) -> str:
    """The document as YAML text, keys in the order built (never re-sorted)."""
    body = yaml.dump(
        doc,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=100,
    )
    return HEADER + body


def read(path: Path) -> tuple[str, Doc]:
    """The text and parsed content of a committed document, or a clear error."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{path} does not exist",
            fix="run `fleet contract generate` and commit the file",
        ) from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"{path} is not valid YAML: {exc}".replace("\n", " "),
            fix="restore it from git, or run `fleet contract generate`",
        ) from None
    if not isinstance(doc, dict):
        raise ConfigError(
            f"{path} is not an AsyncAPI document (no mapping at the top)",
            fix="run `fleet contract generate`",
        )
    return text, doc


def differences(old: Any, new: Any, path: str = "") -> Iterator[str]:
    """Yield the dotted paths at which ``old`` and ``new`` differ (added, removed, changed)."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in [*old, *(k for k in new if k not in old)]:
            where = f"{path}.{key}" if path else str(key)
            if key not in new:
                yield f"{where} (removed)"
            elif key not in old:
                yield f"{where} (added)"
            else:
                yield from differences(old[key], new[key], where)
    elif old != new:
        yield path or "(document)"
