"""Bot lifecycle payloads: ``bot.created`` … ``bot.deleted``.

Every bot event carries ``version``: the bot's version *after* the change. The lifecycle
owner increments it by one per event, so a consumer can apply events in order, detect a
gap and ignore a replayed older state (optimistic versioning of the bot state machine).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import Field, JsonValue, model_validator

from .payload import Payload
from .scalars import NonEmptyStr, PositiveDecimal, SubjectToken

BotVersion = Annotated[int, Field(ge=1)]
"""Version of a bot after the change the event records (1 on creation)."""

RiskLevel = Annotated[int, Field(ge=1)]


class BotStatus(StrEnum):
    """Where a bot stands in its lifecycle."""

    CREATED = "created"
    DEPLOYED = "deployed"
    RUNNING = "running"
    STOPPED = "stopped"
    DELETED = "deleted"


class _BotPayload(Payload):
    """Fields and routing shared by all bot events: subject ``bot.<verb>.<bot_id>``."""

    subject_fields: ClassVar[tuple[str, ...]] = ("bot_id",)
    key_field: ClassVar[str] = "bot_id"

    bot_id: SubjectToken
    version: BotVersion


class BotCreated(_BotPayload):
    """A user created a bot (columns of the ``bots`` table)."""

    event_type: ClassVar[str] = "bot.created"
    schema_version: ClassVar[int] = 1

    user_id: NonEmptyStr
    name: Annotated[str, Field(min_length=1, max_length=255)]
    type: Annotated[str, Field(min_length=1, max_length=100)]
    """Bot kind, e.g. ``"scheduled"`` or ``"realtime"``."""
    description: str | None = None
    config: dict[str, JsonValue]
    status: BotStatus = BotStatus.CREATED
    tags: list[str] = Field(default_factory=list)
    risk_level: RiskLevel = 1
    max_position_size: PositiveDecimal | None = None


class BotUpdated(_BotPayload):
    """A bot's definition changed; only the changed fields are present.

    A field left out (or null) is unchanged. Status changes are not updates: they are
    the ``bot.deployed`` / ``bot.started`` / ``bot.stopped`` / ``bot.deleted`` events.
    """

    event_type: ClassVar[str] = "bot.updated"
    schema_version: ClassVar[int] = 1

    name: Annotated[str, Field(min_length=1, max_length=255)] | None = None
    type: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    description: str | None = None
    config: dict[str, JsonValue] | None = None
    tags: list[str] | None = None
    risk_level: RiskLevel | None = None
    max_position_size: PositiveDecimal | None = None

    @model_validator(mode="after")
    def _something_changed(self) -> BotUpdated:
        if not self.changed_fields():
            raise ValueError("bot.updated must change at least one field")
        return self

    def changed_fields(self) -> dict[str, object]:
        """Return the changed fields and their new values."""
        return {
            name: value
            for name in type(self).model_fields
            if name not in ("bot_id", "version") and (value := getattr(self, name)) is not None
        }


class BotDeployed(_BotPayload):
    """A bot version was deployed to a runtime (the ``bot_deployments`` row)."""

    event_type: ClassVar[str] = "bot.deployed"
    schema_version: ClassVar[int] = 1

    deployment_id: SubjectToken
    runtime: NonEmptyStr
    """Runtime the bot runs on, e.g. ``"python3.11"``."""
    image: str | None = None
    resources: dict[str, JsonValue] = Field(default_factory=dict)
    """Resource limits, e.g. ``{"cpu": "500m", "memory": "256Mi"}``."""
    environment: dict[str, JsonValue] = Field(default_factory=dict)


class BotStarted(_BotPayload):
    """A deployed bot started running."""

    event_type: ClassVar[str] = "bot.started"
    schema_version: ClassVar[int] = 1

    deployment_id: SubjectToken
    reason: str | None = None


class BotStopped(_BotPayload):
    """A running bot stopped (by request or on failure; ``reason`` says which)."""

    event_type: ClassVar[str] = "bot.stopped"
    schema_version: ClassVar[int] = 1

    deployment_id: SubjectToken
    reason: str | None = None


class BotDeleted(_BotPayload):
    """A bot was deleted; ``version`` is its final version."""

    event_type: ClassVar[str] = "bot.deleted"
    schema_version: ClassVar[int] = 1
