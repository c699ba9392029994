"""Parse YAML keeping where every key and value sits, so problems can name a line and column."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from fleet_runtime.topology.problems import Path


@dataclass(frozen=True)
class Mark:
    """A 1-based line and column."""

    line: int
    column: int


@dataclass
class Located:
    """Plain YAML data plus the position of each key path and any duplicate keys."""

    data: Any
    values: dict[Path, Mark] = field(default_factory=dict)
    keys: dict[Path, Mark] = field(default_factory=dict)
    duplicates: list[tuple[Path, Mark]] = field(default_factory=list)

    def mark(self, path: Path, *, key: bool = False) -> Mark:
        """Where `path` is (its key when `key`), or its nearest written parent."""
        table = self.keys if key else self.values
        for end in range(len(path), -1, -1):
            prefix = path[:end]
            if prefix in table:
                return table[prefix]
            if prefix in self.values:
                return self.values[prefix]
        return Mark(1, 1)


def _mark(node: yaml.Node) -> Mark:
    return Mark(node.start_mark.line + 1, node.start_mark.column + 1)


def _walk(node: yaml.Node, path: Path, located: Located) -> None:
    located.values[path] = _mark(node)
    if isinstance(node, yaml.MappingNode):
        seen: set[object] = set()
        for key_node, value_node in node.value:
            key = key_node.value
            child = (*path, key)
            if key in seen:
                located.duplicates.append((child, _mark(key_node)))
                continue
            seen.add(key)
            located.keys[child] = _mark(key_node)
            _walk(value_node, child, located)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*path, index), located)


def load_located(text: str) -> Located:
    """Compose the YAML once for positions and construct the same nodes for data.

    Raises yaml.MarkedYAMLError on a syntax error (it carries its own mark).
    """
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return Located(data=None)
        data = loader.construct_document(node)
    finally:
        loader.dispose()
    located = Located(data=data)
    _walk(node, (), located)
    return located
