"""One module per backup target; each uploads its objects and reports its store positions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from backup_runner.manifest import ManifestObject


@dataclass
class TargetResult:
    """What a target wrote, and the positions and tool versions for the manifest."""

    objects: list[ManifestObject] = field(default_factory=list)
    positions: dict[str, Any] = field(default_factory=dict)
    tools: dict[str, str] = field(default_factory=dict)
    gaps: list[str] = field(default_factory=list)
