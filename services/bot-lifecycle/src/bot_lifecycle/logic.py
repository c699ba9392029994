"""The bot state machine: one event against the bot's current state, no I/O.

    created ──deploy──> deployed ──start──> running ──stop──> stopped
       │                  │  ^                 ^                │ │
       │                  │  └─────deploy──────┼────────────────┘ │   (redeploy)
       │                  │                    └──────start───────┘
       └──────────────────┴──delete──> deleted <──delete── stopped

- ``bot.updated`` is allowed in every state but ``deleted`` (it changes the definition,
  not the status; a running bot picks it up on its next deployment).
- ``bot.deployed`` from created, deployed or stopped: a new deployment replaces the
  current one, which becomes ``superseded``. A running bot must stop first.
- ``bot.started`` from deployed or stopped, ``bot.stopped`` from running; both name the
  bot's current deployment.
- ``bot.deleted`` from created, deployed or stopped (soft delete; the row stays). A
  running bot must stop first. Nothing is accepted after delete.
- Versions: an event whose version is not above the bot's is a repeat or older than the
  state: ignored, even after delete, so redeliveries never dead-letter. A gap (version
  more than one above) is applied: the state checks above still guard it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from bot_lifecycle.transitions import StatusChange
from fleet_events import (
    BotCreated,
    BotDeleted,
    BotDeployed,
    BotStarted,
    BotStatus,
    BotStopped,
    BotUpdated,
    Event,
)

S = BotStatus

UPDATABLE = frozenset({S.CREATED, S.DEPLOYED, S.RUNNING, S.STOPPED})
DEPLOYABLE = frozenset({S.CREATED, S.DEPLOYED, S.STOPPED})
STARTABLE = frozenset({S.DEPLOYED, S.STOPPED})
DELETABLE = frozenset({S.CREATED, S.DEPLOYED, S.STOPPED})


class Bot(NamedTuple):
    """A row of ``lifecycle.bots``.

    Named tuples (here and for deployments), not frozen dataclasses: every applied event
    builds a changed copy, and ``_replace`` costs about a quarter of ``dataclasses.replace``
    on a frozen dataclass of this size.
    """

    id: str
    user_id: str
    name: str
    type: str
    description: str | None
    config: dict[str, Any]
    status: BotStatus
    version: int
    tags: list[str]
    risk_level: int
    max_position_size: Decimal | None
    current_deployment_id: str | None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None


class Deployment(NamedTuple):
    """A row of ``lifecycle.bot_deployments``."""

    id: str
    bot_id: str
    bot_version: int
    runtime: str
    image: str | None
    resources: dict[str, Any]
    environment: dict[str, Any]
    status: str
    deployed_at: datetime
    started_at: datetime | None
    stopped_at: datetime | None
    stop_reason: str | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Applied:
    """The event changes the bot: its new state, the deployments it touched, the audit."""

    bot: Bot
    deployments: tuple[Deployment, ...]
    old_values: dict[str, Any] | None
    new_values: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Ignored:
    """The event is a repeat or older than the state: nothing to do."""

    reason: str


@dataclass(frozen=True, slots=True)
class Refused:
    """The event is invalid for the bot's state: it goes to the dead-letter stream."""

    reason: str


Decision = Applied | Ignored | Refused


def decide(
    bot: Bot | None, deployments: dict[str, Deployment], event: Event[Any] | StatusChange
) -> Decision:
    """Apply ``event`` to ``bot`` (None if unknown), given the deployments known by id.

    A start or stop may come as the ``StatusChange`` the subscription's decoder makes.
    """
    data: Any = event.data
    if bot is not None and data.version <= bot.version:
        return Ignored(f"version {data.version} <= current version {bot.version}")
    # Dispatch on the exact class: decoded events are never subclasses, and isinstance on
    # a pydantic model class goes through ABCMeta, a measurable part of a batch.
    kind = type(data)
    if kind is BotCreated:
        if bot is not None:
            return Refused(f"bot {data.bot_id} already exists (version {bot.version})")
        created = _created(data, event.time)
        return Applied(created, (), None, _snapshot(created))
    if bot is None:
        return Refused(f"unknown bot {data.bot_id}: {event.type} before bot.created")
    if bot.status is S.DELETED:
        return Refused(f"bot {bot.id} is deleted: {event.type} is not accepted")
    at = event.time
    if kind is BotUpdated:
        if bot.status not in UPDATABLE:
            return _wrong_state(bot, event)
        changes: dict[str, Any] = dict(data.changed_fields())
        return _diff(bot, bot._replace(**changes, version=data.version, updated_at=at))
    if kind is BotDeployed:
        if bot.status not in DEPLOYABLE:
            return _wrong_state(bot, event)
        if data.deployment_id in deployments:
            return Refused(f"deployment {data.deployment_id} already exists")
        new = Deployment(
            id=data.deployment_id,
            bot_id=bot.id,
            bot_version=data.version,
            runtime=data.runtime,
            image=data.image,
            resources=dict(data.resources),
            environment=dict(data.environment),
            status="deployed",
            deployed_at=at,
            started_at=None,
            stopped_at=None,
            stop_reason=None,
            updated_at=at,
        )
        touched = [new]
        previous = _current(bot, deployments)
        if previous is not None:
            touched.insert(0, previous._replace(status="superseded", updated_at=at))
        after = bot._replace(
            status=S.DEPLOYED,
            current_deployment_id=new.id,
            version=data.version,
            updated_at=at,
        )
        return _diff(bot, after, touched)
    if kind is StatusChange or kind is BotStarted or kind is BotStopped:
        starting = event.type == BotStarted.event_type
        if bot.status not in (STARTABLE if starting else {S.RUNNING}):
            return _wrong_state(bot, event)
        current = _current(bot, deployments)
        if current is None or current.id != data.deployment_id:
            return Refused(
                f"deployment {data.deployment_id} is not bot {bot.id}'s current deployment "
                f"({bot.current_deployment_id})"
            )
        if starting:
            deployment = current._replace(
                status="running", started_at=at, stop_reason=None, updated_at=at
            )
        else:
            deployment = current._replace(
                status="stopped", stopped_at=at, stop_reason=data.reason, updated_at=at
            )
        status = S.RUNNING if starting else S.STOPPED
        return _diff(
            bot, bot._replace(status=status, version=data.version, updated_at=at), [deployment]
        )
    if kind is BotDeleted:
        if bot.status not in DELETABLE:
            return _wrong_state(bot, event, hint="stop it first")
        current = _current(bot, deployments)
        touched = [] if current is None else [current._replace(status="retired", updated_at=at)]
        after = bot._replace(status=S.DELETED, version=data.version, updated_at=at, deleted_at=at)
        return _diff(bot, after, touched)
    return Refused(f"bot-lifecycle does not handle {event.type}")


def _created(data: BotCreated, at: datetime) -> Bot:
    return Bot(
        id=data.bot_id,
        user_id=data.user_id,
        name=data.name,
        type=data.type,
        description=data.description,
        config=dict(data.config),
        status=S.CREATED,
        version=data.version,
        tags=list(data.tags),
        risk_level=data.risk_level,
        max_position_size=data.max_position_size,
        current_deployment_id=None,
        created_at=at,
        updated_at=at,
        deleted_at=None,
    )


def _current(bot: Bot, deployments: dict[str, Deployment]) -> Deployment | None:
    if bot.current_deployment_id is None:
        return None
    return deployments.get(bot.current_deployment_id)


def _wrong_state(bot: Bot, event: Event[Any] | StatusChange, hint: str | None = None) -> Refused:
    reason = f"{event.type} is not allowed when bot {bot.id} is {bot.status.value}"
    return Refused(f"{reason}: {hint}" if hint else reason)


def _diff(before: Bot, after: Bot, deployments: list[Deployment] | None = None) -> Applied:
    # ``replace`` keeps the very objects of the fields it does not set: those are skipped
    # without a conversion; the others compare by their JSON form, as stored in the audit.
    old: dict[str, Any] = {}
    new: dict[str, Any] = {}
    for name in _BOT_FIELDS:
        a, b = getattr(before, name), getattr(after, name)
        if a is b:
            continue
        ja, jb = _json_field(name, a), _json_field(name, b)
        if ja != jb:
            old[name], new[name] = ja, jb
    return Applied(after, tuple(deployments or ()), old, new)


def _json_field(name: str, value: Any) -> Any:
    """One bot field as a JSON value: decimals and times as strings, copies of containers."""
    if value is None:
        return None
    if name in _TIME_FIELDS:
        return value.isoformat()
    if name == "status":
        return value.value
    if name == "max_position_size":
        return str(value)
    if name == "config":
        return dict(value)
    if name == "tags":
        return list(value)
    return value


def _snapshot(bot: Bot) -> dict[str, Any]:
    """The bot's fields as JSON values (decimals and times as strings), in field order.

    Read field by field rather than with ``dataclasses.asdict``, whose recursive deep copy
    dominated a batch's CPU time. Nothing mutates a bot's ``config`` or ``tags`` in place
    (every change builds new ones), so top-level copies keep the snapshot independent.
    """
    return {name: _json_field(name, getattr(bot, name)) for name in _BOT_FIELDS}


_TIME_FIELDS = frozenset({"created_at", "updated_at", "deleted_at"})
_BOT_FIELDS = Bot._fields
