"""Load streams.yaml: schema errors and cross-checks, every problem with its line:col and a fix."""

from __future__ import annotations

import difflib
from pathlib import Path as FilePath
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from fleet_runtime.errors import ConfigError
from fleet_runtime.topology.checks import check_topology
from fleet_runtime.topology.model import ConsumerSpec, StreamSpec, Topology, valid_name
from fleet_runtime.topology.positions import Located, load_located
from fleet_runtime.topology.problems import Path, Problem, TopologyInvalid

_TOP_KEYS = ("streams", "consumers")
_SCHEMA_HINT = "see `fleet topology schema` for every key and its allowed values"


class _Collector:
    """Turns paths into positioned Problems for one file."""

    def __init__(self, file: str, located: Located) -> None:
        self.file = file
        self.located = located
        self.problems: list[Problem] = []

    def add(self, path: Path, message: str, fix: str, *, key: bool = False) -> None:
        mark = self.located.mark(path, key=key)
        self.problems.append(Problem(self.file, mark.line, mark.column, path, message, fix))


def _fix_for(error_type: str, message: str, path: Path) -> str:
    if "duration" in message:
        return "write a duration like 30s, 5m, 72h or 365d"
    if "size" in message:
        return "write a size like 512MiB, 10GiB or unlimited"
    if error_type == "literal_error":
        return f"use one of the values listed ({_SCHEMA_HINT})"
    if error_type == "missing":
        return f"add the key `{path[-1]}`"
    return _SCHEMA_HINT


def _unknown_key_fix(key: object, model: type[BaseModel]) -> str:
    known = list(model.model_fields)
    close = difflib.get_close_matches(str(key), known, n=1)
    hint = f"did you mean `{close[0]}`? " if close else ""
    return f"{hint}remove it or use one of: {', '.join(known)}"


def _nested_model(model: type[BaseModel], loc: tuple[str | int, ...]) -> type[BaseModel]:
    """The model that owns the last key of `loc` (for suggesting known keys)."""
    current = model
    for part in loc[:-1]:
        field = current.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None) if field else None
        for candidate in getattr(annotation, "__args__", (annotation,)):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                current = candidate
    return current


def _validate_entry(
    out: _Collector, model: type[BaseModel], data: object, base: Path
) -> BaseModel | None:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            loc = tuple(error["loc"])
            path = (*base, *loc)
            message = str(error["msg"]).removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                owner = _nested_model(model, loc)
                out.add(
                    path, f"unknown key `{loc[-1]}`", _unknown_key_fix(loc[-1], owner), key=True
                )
            else:
                if error["type"] == "missing":
                    message = f"missing required key `{loc[-1]}`"
                fix = _fix_for(error["type"], message, path)
                out.add(path, message, fix)
        return None


def _parse_streams(out: _Collector, raw: object) -> dict[str, StreamSpec]:
    streams: dict[str, StreamSpec] = {}
    if not isinstance(raw, dict):
        out.add(
            ("streams",),
            "`streams` must be a mapping of stream name to settings",
            "write `streams:` followed by `  NAME:` entries",
        )
        return streams
    for name, body in raw.items():
        if not isinstance(name, str) or not valid_name(name):
            out.add(
                ("streams", name),
                f"bad stream name {name!r}",
                "use letters, digits, `_` or `-` (no dots, spaces or wildcards)",
                key=True,
            )
            continue
        spec = _validate_entry(out, StreamSpec, body, ("streams", name))
        if isinstance(spec, StreamSpec):
            streams[name] = spec
    return streams


def _parse_consumers(out: _Collector, raw: object) -> list[tuple[int, ConsumerSpec]]:
    consumers: list[tuple[int, ConsumerSpec]] = []
    if raw is None:
        return consumers
    if not isinstance(raw, list):
        out.add(
            ("consumers",),
            "`consumers` must be a list",
            "write each consumer as an item starting with `- worker: NAME`",
        )
        return consumers
    for index, body in enumerate(raw):
        spec = _validate_entry(out, ConsumerSpec, body, ("consumers", index))
        if isinstance(spec, ConsumerSpec):
            consumers.append((index, spec))
    return consumers


def parse_topology(text: str, file: str = "streams.yaml") -> tuple[Topology | None, list[Problem]]:
    """Validate the text of a streams.yaml; returns the topology (None if any problem) and all
    problems found."""
    try:
        located = load_located(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = Problem(
            file,
            line,
            column,
            (),
            f"not valid YAML: {exc.problem}",
            "fix the YAML syntax (indentation, quotes, `key: value`)",
        )
        return None, [problem]
    out = _Collector(file, located)
    for path, where in located.duplicates:
        message = f"key `{path[-1]}` is written twice (YAML keeps only the last)"
        out.problems.append(Problem(file, where.line, where.column, path, message, "keep one"))
    data: Any = located.data
    if not isinstance(data, dict):
        out.add(
            (),
            "the file must be a mapping with `streams:` and `consumers:`",
            "start the file with `streams:`",
        )
        return None, out.problems
    for key in data:
        if key not in _TOP_KEYS:
            close = difflib.get_close_matches(str(key), _TOP_KEYS, n=1)
            hint = f"did you mean `{close[0]}`? " if close else ""
            out.add(
                (key,),
                f"unknown key `{key}`",
                f"{hint}the top level has only `streams` and `consumers`",
                key=True,
            )
    if "streams" not in data:
        out.add((), "missing required key `streams`", "add `streams:` with at least one stream")
    streams = _parse_streams(out, data.get("streams", {}))
    consumers = _parse_consumers(out, data.get("consumers"))
    raw_streams = data.get("streams")
    declared = {str(name) for name in raw_streams} if isinstance(raw_streams, dict) else set()
    for path, message, fix, on_key in check_topology(streams, consumers, declared):
        out.add(path, message, fix, key=on_key)
    if out.problems:
        return None, out.problems
    return Topology(streams=streams, consumers=[spec for _, spec in consumers]), []


def load_topology(path: FilePath) -> Topology:
    """Read and validate streams.yaml; raises ConfigError listing every problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"no topology file at {path}",
            fix="run from the repository root or pass --file path/to/streams.yaml",
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}", fix="check the path") from None
    topology, problems = parse_topology(text, str(path))
    if topology is None:
        raise TopologyInvalid(str(path), problems)
    return topology
