"""Plain-text reports of a plan, an apply and a drift check, one line per fact."""

from __future__ import annotations

from fleet_runtime.topology.plan import Action, Change, Plan

_NOTES = {
    Action.EXTRA: "not in the file; kept; --prune deletes it",
    Action.DELETE: "not in the file; deleted by --prune",
}


def plan_lines(plan: Plan) -> list[str]:
    """`stream TRADES: update` followed by indented `max_age: 72h -> 96h` lines."""
    lines: list[str] = []
    for change in plan.changes:
        note = _NOTES.get(change.action)
        head = f"{change.label}: {change.action.value}"
        lines.append(f"{head} ({note})" if note else head)
        lines.extend(f"    {field.render()}" for field in change.fields)
    lines.append(f"plan: {plan.summary()}")
    return lines


def recreate_warnings(plan: Plan) -> list[str]:
    """The data each allowed recreate or prune destroys, said before it happens."""
    warnings: list[str] = []
    for change in plan.of(Action.RECREATE, Action.DELETE):
        if change.consumer is None:
            held = f"{change.messages} messages" if change.messages is not None else "its messages"
            warnings.append(f"WARNING: deleting {change.label} and all {held} in it")
        else:
            warnings.append(f"WARNING: deleting {change.label}; its delivery position is lost")
    return warnings


def _drift_line(change: Change) -> list[str]:
    if change.action is Action.CREATE:
        return [f"drift: {change.label} is missing on the server"]
    if change.action in (Action.EXTRA, Action.DELETE):
        return [f"drift: {change.label} exists on the server but not in the file"]
    return [
        f"drift: {change.label} {field.field}: server has {field.live}, file has {field.desired}"
        for field in change.fields
    ]


def drift_lines(plan: Plan) -> list[str]:
    """One `drift: …` line per difference, then a count; or a single `no drift` line."""
    lines = [line for change in plan.changes for line in _drift_line(change)]
    if not lines:
        streams = sum(1 for c in plan.changes if c.consumer is None)
        consumers = len(plan.changes) - streams
        return [f"no drift: {streams} streams and {consumers} consumers match the file"]
    lines.append(f"drift: {len(lines)} difference{'s' if len(lines) != 1 else ''}")
    return lines
