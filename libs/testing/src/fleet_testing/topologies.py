"""Variants of the repository's streams.yaml for tests and benchmarks.

Tests run the declared topology with a few values changed (a shorter first backoff, a
partitioned stream). The file is edited as data, so a change to streams.yaml that moves
or renames what a variant touches fails here, loudly, instead of silently testing
something else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from fleet_runtime.topology import load_topology


class StreamsFile:
    """A streams.yaml document loaded for editing; ``write`` validates what it writes."""

    def __init__(self, source: Path) -> None:
        self._doc: dict[str, Any] = yaml.safe_load(source.read_text())

    def consumer(self, worker: str, stream: str) -> dict[str, Any]:
        """The declaration of ``worker``'s consumer on ``stream`` (to edit in place)."""
        for consumer in self._doc["consumers"]:
            if consumer["worker"] == worker and consumer["stream"] == stream:
                found: dict[str, Any] = consumer
                return found
        raise KeyError(f"streams.yaml declares no consumer of {worker} on {stream}")

    def set_backoff(self, worker: str, stream: str, backoff: list[str]) -> StreamsFile:
        """Replace the consumer's backoff list (tests shorten the first redelivery)."""
        self.consumer(worker, stream)["backoff"] = backoff
        return self

    def set_replicas(self, replicas: int) -> StreamsFile:
        """Run every stream at ``replicas`` copies (a cluster's production setting)."""
        for stream in self._doc["streams"].values():
            stream["replicas"] = replicas
        return self

    def set_stream(self, stream: str, **values: Any) -> StreamsFile:
        """Change keys of ``stream``'s declaration (tests make one forget its oldest messages)."""
        self._doc["streams"][stream].update(values)
        return self

    def partition(
        self, stream: str, *, subjects: str, count: int, key: list[int], workers: list[str]
    ) -> StreamsFile:
        """Partition ``stream`` ``count`` ways and bind each of ``workers`` per partition."""
        self._doc["streams"][stream]["partition"] = {
            "subjects": subjects,
            "count": count,
            "key": key,
        }
        for worker in workers:
            consumer = self.consumer(worker, stream)
            consumer["partitions"] = count
            consumer["filter_subjects"] = [subjects]
        return self

    def write(self, path: Path) -> Path:
        """Write the edited document to ``path`` and check it loads as a valid topology."""
        path.write_text(yaml.safe_dump(self._doc, sort_keys=False))
        load_topology(path)
        return path
