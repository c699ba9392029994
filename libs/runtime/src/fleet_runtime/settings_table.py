"""The README's table of worker settings, generated from the workers' settings classes."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pydantic import SecretStr
from pydantic.fields import FieldInfo

from fleet_runtime.errors import ConfigError
from fleet_runtime.settings import WorkerSettings
from fleet_runtime.shared_settings import shared_variable
from fleet_runtime.workers import WorkerSpec

BEGIN = "<!-- settings-table:begin (generated: ./fleetw worker settings --readme README.md) -->"
END = "<!-- settings-table:end -->"


def _default(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    value = info.get_default()
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if isinstance(value, tuple):
        value = ",".join(str(getattr(v, "value", v)) for v in value)
    return f"`{value}`" if value not in (None, "") else "—"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def settings_table(workers: Mapping[str, WorkerSpec]) -> str:
    """One Markdown row per setting name: which workers read it, default, fleet-wide fallback.

    Settings every worker shares come first (in ``WorkerSettings``' order), then each
    store's. A default that differs between workers is listed per worker.
    """
    fields: dict[str, dict[str, FieldInfo]] = {}
    for name, spec in workers.items():
        for field, info in spec.settings_cls.model_fields.items():
            fields.setdefault(field, {})[name] = info
    common = list(WorkerSettings.model_fields)
    order = common + sorted(f for f in fields if f not in common)
    rows = [
        "| variable (`<PREFIX>` = the worker's, e.g. `TRADE_RECORDER_`) | fleet-wide fallback "
        "| workers | default | what |",
        "|---|---|---|---|---|",
    ]
    for field in order:
        per_worker = fields.get(field)
        if not per_worker:
            continue
        who = "all" if len(per_worker) == len(workers) else ", ".join(per_worker)
        defaults = {w: _default(i) for w, i in per_worker.items()}
        if len(set(defaults.values())) == 1:
            default = next(iter(defaults.values()))
        else:
            base = WorkerSettings.model_fields.get(field)
            usual = _default(base) if base is not None else None
            shown = [f"{d} ({w})" for w, d in defaults.items() if d != usual]
            default = "; ".join([*shown, *([f"{usual} (others)"] if usual else [])])
        base = WorkerSettings.model_fields.get(field)
        info = base if base is not None else next(iter(per_worker.values()))
        shared = shared_variable(field)
        rows.append(
            f"| `<PREFIX>{field.upper()}` | {f'`{shared}`' if shared else '—'} | {who} "
            f"| {_cell(default)} | {_cell(info.description or '')} |"
        )
    return "\n".join(rows) + "\n"


def readme_with_table(readme: str, table: str) -> str:
    """``readme`` with the text between the table's markers replaced by ``table``."""
    start, end = readme.find(BEGIN), readme.find(END)
    if start < 0 or end < start:
        raise ConfigError(
            "the README has no settings table markers",
            fix=f"put the lines {BEGIN!r} and {END!r} where the table goes",
        )
    return readme[: start + len(BEGIN)] + "\n" + table + readme[end:]


def update_readme(path: Path, workers: Mapping[str, WorkerSpec]) -> bool:
    """Rewrite the table in the README at ``path``; True when it changed."""
    text = path.read_text()
    new = readme_with_table(text, settings_table(workers))
    if new != text:
        path.write_text(new)
    return new != text
