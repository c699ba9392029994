"""What a deploy check reports: problems that fail it and notes that only inform."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Finding:
    """One problem in a deploy file: where, what, and how to fix it."""

    where: str
    message: str
    fix: str = ""

    def line(self) -> str:
        """The finding as one line for a terminal or CI log."""
        text = f"{self.where}: {self.message}"
        return f"{text} (fix: {self.fix})" if self.fix else text


@dataclass
class Report:
    """Problems (the check fails) and notes (facts an operator should know) of one run."""

    problems: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def problem(self, where: str, message: str, fix: str = "") -> None:
        """Record a problem."""
        self.problems.append(Finding(where, message, fix))

    def note(self, text: str) -> None:
        """Record a note."""
        self.notes.append(text)

    def extend(self, other: Report) -> None:
        """Add another report's problems and notes to this one."""
        self.problems.extend(other.problems)
        self.notes.extend(other.notes)

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.problems

    def messages(self) -> list[str]:
        """Every problem as one line each."""
        return [p.line() for p in self.problems]
