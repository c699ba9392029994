"""What is wrong in a streams.yaml, where (line:col), and how to fix it."""

from __future__ import annotations

from dataclasses import dataclass

from fleet_runtime.errors import ConfigError

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """One mistake in the file, at a 1-based line and column."""

    file: str
    line: int
    column: int
    path: Path
    message: str
    fix: str

    @property
    def where(self) -> str:
        """`streams.yaml:12:5`."""
        return f"{self.file}:{self.line}:{self.column}"

    @property
    def dotted(self) -> str:
        """`streams.BOTS.max_age` or `consumers[2].backoff`."""
        text = ""
        for part in self.path:
            text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
        return text

    def render(self) -> str:
        """Two lines: the position, key path and message; then the fix."""
        key = f"{self.dotted}: " if self.path else ""
        return f"{self.where}: {key}{self.message}\n    fix: {self.fix}"


class TopologyInvalid(ConfigError):
    """streams.yaml has one or more problems; all of them are listed."""

    def __init__(self, file: str, problems: list[Problem]) -> None:
        ordered = sorted(problems, key=lambda p: (p.line, p.column, p.message))
        count = len(ordered)
        head = f"{file} has {count} problem{'s' if count != 1 else ''}:"
        body = "\n".join(f"  {problem.render()}" for problem in ordered)
        super().__init__(
            f"{head}\n{body}",
            fix="correct each line above, then run `fleet topology validate` again",
        )
        self.file = file
        self.problems = ordered
