"""Base class of every typed event payload."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict


class Payload(BaseModel):
    """The typed ``data`` of an event.

    Each concrete subclass declares, as class variables:

    - ``event_type``: the envelope ``type`` (``"trade.executed"``);
    - ``schema_version``: the current version of its shape (bumped on a breaking change,
      together with an upcaster from the previous version);
    - ``subject_fields``: the fields whose values follow the type in the NATS subject,
      in order (``("bot_id",)`` gives ``trade.executed.<bot_id>``);
    - ``key_field``: the field used as the envelope ``key`` when none is given.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    event_type: ClassVar[str]
    schema_version: ClassVar[int]
    subject_fields: ClassVar[tuple[str, ...]]
    key_field: ClassVar[str]

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        """Check at import time that a concrete payload declares its contract."""
        super().__pydantic_init_subclass__(**kwargs)
        # Intermediate bases (shared fields of a family) declare no event type.
        if not hasattr(cls, "event_type"):
            return
        missing = [
            name
            for name in ("event_type", "schema_version", "subject_fields", "key_field")
            if not hasattr(cls, name)
        ]
        if missing:
            raise TypeError(f"{cls.__name__} must declare {', '.join(missing)}")
        if cls.schema_version < 1:
            raise TypeError(f"{cls.__name__}.schema_version must be >= 1")
        unknown = [
            name for name in (*cls.subject_fields, cls.key_field) if name not in cls.model_fields
        ]
        if unknown:
            raise TypeError(f"{cls.__name__} names unknown fields: {', '.join(unknown)}")

    def default_key(self) -> str:
        """Return the envelope key of this payload when the publisher gives none."""
        return str(getattr(self, self.key_field))

    def subject_tokens(self) -> tuple[str, ...]:
        """Return the entity tokens that follow the event type in the subject."""
        return tuple(str(getattr(self, name)) for name in self.subject_fields)
