"""Cluster setup for workers: login roles and the database, created idempotently."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import asyncpg


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def ensure_login_role(
    conn: asyncpg.Connection, role: str, *, password: str | None = None
) -> bool:
    """Create the login role ``role`` unless it exists; return whether it was created.

    ``conn`` must belong to a role with CREATEROLE (the cluster owner in dev and tests).
    The password, when given, is set on creation only: rotating it is an operator's job.
    """
    if await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role):
        return False
    ident = _quote_ident(role)
    try:
        if password is None:
            await conn.execute(f"CREATE ROLE {ident} LOGIN")
        else:
            literal = await conn.fetchval("SELECT quote_literal($1::text)", password)
            await conn.execute(f"CREATE ROLE {ident} LOGIN PASSWORD {literal}")
    except (asyncpg.DuplicateObjectError, asyncpg.UniqueViolationError):
        # Another process created it between the check and the CREATE.
        return False
    return True


async def ensure_login_role_at(dsn: str, role: str, *, password: str | None = None) -> bool:
    """Connect to ``dsn`` (a role with CREATEROLE) and run ``ensure_login_role``."""
    conn = await asyncpg.connect(dsn)
    try:
        return await ensure_login_role(conn, role, password=password)
    finally:
        await conn.close()


async def ensure_database(admin_dsn: str, name: str) -> bool:
    """Create database ``name`` on the server of ``admin_dsn`` unless it exists."""
    conn = await asyncpg.connect(admin_dsn)
    try:
        if await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            return False
        try:
            await conn.execute(f"CREATE DATABASE {_quote_ident(name)}")
        except (asyncpg.DuplicateDatabaseError, asyncpg.UniqueViolationError):
            return False
        return True
    finally:
        await conn.close()


def dsn_with(dsn: str, *, user: str | None = None, database: str | None = None) -> str:
    """``dsn`` (a postgresql:// URL) with another user (no password) and/or database."""
    parts = urlsplit(dsn)
    netloc = parts.netloc
    if user is not None:
        host = netloc.rsplit("@", 1)[-1]
        netloc = f"{user}@{host}"
    path = f"/{database}" if database is not None else parts.path
    return urlunsplit(parts._replace(netloc=netloc, path=path))
