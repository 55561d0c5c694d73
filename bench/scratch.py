"""A throwaway database for a benchmark: created, migrated with a service's migrations, and
dropped afterwards whatever happens."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg

from shared.db import ensure_database
from shared.migrations import apply_migrations

SERVER = os.environ.get("HERALD_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")


@asynccontextmanager
async def scratch_database(prefix: str, schema: str, migrations: Path) -> AsyncIterator[str]:
    """The DSN of a new database named `prefix` + a random suffix, migrated."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    dsn = f"{SERVER}/{name}"
    await ensure_database(dsn)
    try:
        await apply_migrations(dsn, schema, migrations)
        yield dsn
    finally:
        admin = await asyncpg.connect(f"{SERVER}/postgres")
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
