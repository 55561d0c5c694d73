"""Numbered SQL migrations per service schema, applied once each under an advisory lock so
that replicas starting together neither race nor fail."""

from __future__ import annotations

import logging
import re
import zlib
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg

log = logging.getLogger("herald.migrations")

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def migration_files(directory: Path) -> list[tuple[int, str, Path]]:
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise ValueError(f"migration {path.name} is not named NNNN_name.sql")
        found.append((int(match.group(1)), path.name, path))
    versions = [v for v, _, _ in found]
    if len(set(versions)) != len(versions):
        raise ValueError(f"two migrations in {directory} share a number")
    return found


def _lock_key(schema: str) -> int:
    return zlib.crc32(f"herald.migrate.{schema}".encode()) - 2**31


async def apply_migrations(dsn: str, schema: str, directory: Path) -> list[str]:
    """Apply what is not yet applied; return the names applied now. When a migration fails,
    its error is what is raised, whatever becomes of the connection after it (a connection cut
    mid-statement also fails the rollback and the unlock: those are only logged; the server
    rolls back and unlocks a session that ends)."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _lock_key(schema))
        try:
            return await _apply_pending(conn, schema, directory)
        finally:
            await _quietly(
                f"unlocking the migrations of {schema}",
                lambda: conn.execute("SELECT pg_advisory_unlock($1)", _lock_key(schema)),
            )
    finally:
        await conn.close()  # returns at once when the connection is dead already


async def _apply_pending(conn: asyncpg.Connection, schema: str, directory: Path) -> list[str]:
    applied_now: list[str] = []
    await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    await conn.execute(
        f'CREATE TABLE IF NOT EXISTS "{schema}".schema_migrations ('
        " version integer PRIMARY KEY, name text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())"
    )
    done = {row["version"] for row in await conn.fetch(f'SELECT version FROM "{schema}".schema_migrations')}
    await conn.execute(f'SET search_path TO "{schema}"')
    for version, name, path in migration_files(directory):
        if version in done:
            continue
        transaction = conn.transaction()
        await transaction.start()
        try:
            await conn.execute(path.read_text(encoding="utf-8"))
            await conn.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, name)
        except BaseException:
            # Not `async with`: its rollback, failing on a dead connection, would replace this error.
            await _quietly(f"rolling back migration {name}", transaction.rollback)
            raise
        await transaction.commit()
        log.info("applied migration %s to schema %s", name, schema)
        applied_now.append(name)
    return applied_now


async def _quietly(what: str, cleanup: Callable[[], Awaitable[object]]) -> None:
    """Clean up after the work; a failure is logged, not raised (the work's error matters)."""
    try:
        await cleanup()
    except Exception as exc:
        log.warning("%s failed: %s: %s", what, type(exc).__name__, exc)
