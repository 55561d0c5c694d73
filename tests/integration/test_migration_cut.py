"""A migration whose connection is cut mid-statement must fail with what cut it, not with the
unlock that could not run on the dead connection afterwards (which hid the cause)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import asyncpg
import pytest

from shared.db import ensure_database
from shared.migrations import apply_migrations
from tests.delivery_support import wait_until

pytestmark = pytest.mark.timeout(60)


async def test_a_connection_cut_mid_migration_raises_the_original_error(
    fresh_database_url: str, tmp_path: Path
) -> None:
    await ensure_database(fresh_database_url)
    (tmp_path / "0001_table.sql").write_text("CREATE TABLE before_the_cut (id int);")
    (tmp_path / "0002_slow.sql").write_text("CREATE TABLE cut_short (id int);\nSELECT pg_sleep(120);\n")
    schema = f"cut_{uuid.uuid4().hex[:8]}"
    migrating = asyncio.create_task(apply_migrations(fresh_database_url, schema, tmp_path))
    admin = await asyncpg.connect(fresh_database_url)
    try:

        async def sleeping() -> int | None:
            if migrating.done():
                return -1  # failed before the cut: the task's error says why
            return await admin.fetchval(  # type: ignore[no-any-return]
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                " AND query LIKE '%pg_sleep(120)%' AND pid <> pg_backend_pid()"
            )

        pid = await wait_until(sleeping, what="the slow migration to run")
        assert pid != -1, migrating.exception()
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
        # What the statement raised (before: the unlock's "connection is closed").
        with pytest.raises(asyncpg.ConnectionDoesNotExistError) as raised:
            await migrating
        assert "terminating connection due to administrator command" in str(raised.value)
        assert isinstance(raised.value.__cause__, asyncpg.AdminShutdownError)
        # The first migration is applied; the cut one left nothing behind, to be applied again.
        applied = await admin.fetch(f'SELECT name FROM "{schema}".schema_migrations')
        assert [r["name"] for r in applied] == ["0001_table.sql"]
        assert await admin.fetchval("SELECT to_regclass($1)", f"{schema}.cut_short") is None
        (tmp_path / "0002_slow.sql").write_text("CREATE TABLE cut_short (id int);\n")
        assert await apply_migrations(fresh_database_url, schema, tmp_path) == ["0002_slow.sql"]
    finally:
        await admin.close()


async def test_a_failing_migration_raises_its_error_and_releases_the_lock(
    fresh_database_url: str, tmp_path: Path
) -> None:
    await ensure_database(fresh_database_url)
    (tmp_path / "0001_bad.sql").write_text("CREATE TABLE half_done (id int);\nCREATE TABLE (oops;\n")
    schema = f"bad_{uuid.uuid4().hex[:8]}"
    with pytest.raises(asyncpg.PostgresSyntaxError):
        await apply_migrations(fresh_database_url, schema, tmp_path)
    # Rolled back and unlocked: fixed, it applies (a held lock would make this wait forever).
    (tmp_path / "0001_bad.sql").write_text("CREATE TABLE half_done (id int);\n")
    assert await apply_migrations(fresh_database_url, schema, tmp_path) == ["0001_bad.sql"]
