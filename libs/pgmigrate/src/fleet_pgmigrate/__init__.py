"""Forward-only, checksum-guarded PostgreSQL migrations from ordered .sql files."""

from .cli import migrate_main
from .errors import NOT_MIGRATED_ERRORS, TRANSIENT_ERRORS
from .roles import dsn_with, ensure_database, ensure_login_role, ensure_login_role_at
from .runner import (
    Migration,
    MigrationError,
    applied_versions,
    load_migrations,
    migrate,
    migrate_at,
)

__all__ = [
    "NOT_MIGRATED_ERRORS",
    "TRANSIENT_ERRORS",
    "Migration",
    "MigrationError",
    "applied_versions",
    "dsn_with",
    "ensure_database",
    "ensure_login_role",
    "ensure_login_role_at",
    "load_migrations",
    "migrate",
    "migrate_at",
    "migrate_main",
]
