"""The asyncpg pool of a service, confined to the service's own schema."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit, urlunsplit

import asyncpg

log = logging.getLogger("herald.db")


async def _no_reset(conn: asyncpg.Connection) -> None:
    # asyncpg's default reset (unlock, CLOSE ALL, UNLISTEN, RESET ALL) is the largest cost of a
    # short query. Herald sets no session state on pooled connections (LISTEN uses its own).
    return None


class Repo:
    """The queries of a table or a few, run on the caller's connection (so within its
    transaction, when it has one)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn


# OSErrors that are about files, not about reaching a server.
_FILE_ERRORS = (FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError, PermissionError)


def database_unavailable(exc: BaseException) -> bool:
    """Whether `exc` says the database went away or cannot be reached (a terminated backend, a
    restart, a failover, a full server), not that the request or the code is wrong: what a
    request answers 503 for, to be retried. A transaction it interrupted never committed."""
    if isinstance(
        exc,
        (
            asyncpg.PostgresConnectionError,  # ConnectionDoesNotExistError among them
            asyncpg.exceptions.OperatorInterventionError,  # pg_terminate_backend, shutdown, cancel
            asyncpg.exceptions.TooManyConnectionsError,
            # A pooled connection that read the server's FATAL but not yet the end of the stream.
            asyncpg.exceptions.InternalClientError,
        ),
    ):
        return True
    if type(exc) is asyncpg.InterfaceError:
        # "connection is closed", "pool is closing"; not its subclasses (bad data, configuration).
        return True
    # Refused, reset, unreachable, timed out (TimeoutError is an OSError).
    return isinstance(exc, OSError) and not isinstance(exc, _FILE_ERRORS)


class Database:
    """A pool with a first-come-first-served gate in front: under load, tasks queue in order
    instead of racing in `pool.acquire()`, which is what makes a bad p99."""

    def __init__(self, pool: asyncpg.Pool, size: int, schema: str, dsn: str) -> None:
        self.pool = pool
        self.schema = schema
        self.dsn = dsn
        self._gate = asyncio.Semaphore(size)

    @classmethod
    async def connect(cls, dsn: str, schema: str, size: int = 10) -> Database:
        pool = await asyncpg.create_pool(
            dsn,
            min_size=1,
            max_size=size,
            reset=_no_reset,
            server_settings={"search_path": schema, "application_name": f"herald-{schema}"},
        )
        assert pool is not None
        return cls(pool, size, schema, dsn)

    def connection(self) -> _Lease:
        """`async with db.connection() as conn`: a pooled connection, given back on exit."""
        return _Lease(self)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        async with self.connection() as conn, conn.transaction():
            yield conn

    async def ping(self) -> None:
        """Readiness: the server answers. On a connection of its own, so that a service whose
        pool is merely busy still counts as ready."""
        conn = await asyncpg.connect(self.dsn, timeout=2)
        try:
            await conn.fetchval("SELECT 1")
        finally:
            await conn.close()

    async def close(self) -> None:
        try:
            await asyncio.wait_for(self.pool.close(), timeout=10)
        except TimeoutError:
            log.warning("pool %s did not close in 10 s; terminating its connections", self.schema)
            self.pool.terminate()


class _Lease:
    """The gate and the pool in one plain context manager: the hottest path of every query
    (a generator-based context manager around two more cost as much as a short query's own
    Python side)."""

    __slots__ = ("_conn", "_db")

    def __init__(self, db: Database) -> None:
        self._db = db
        self._conn: asyncpg.Connection | None = None

    async def __aenter__(self) -> asyncpg.Connection:
        await self._db._gate.acquire()
        try:
            self._conn = await self._db.pool.acquire()
        except BaseException:
            self._db._gate.release()
            raise
        return self._conn

    async def __aexit__(self, *_exc: object) -> None:
        conn, self._conn = self._conn, None
        try:
            if conn is not None:
                await self._db.pool.release(conn)
        finally:
            self._db._gate.release()


async def ensure_database(dsn: str) -> None:
    """Create the database the DSN names when it is missing (a fresh PostgreSQL)."""
    parts = urlsplit(dsn)
    name = parts.path.lstrip("/")
    if not name:
        return
    try:
        conn = await asyncpg.connect(dsn)
    except asyncpg.InvalidCatalogNameError:
        pass
    else:
        await conn.close()
        return
    admin = await asyncpg.connect(urlunsplit(parts._replace(path="/postgres")))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        log.info("created database %s", name)
    except (asyncpg.DuplicateDatabaseError, asyncpg.UniqueViolationError):
        pass  # another process made it first (two starting together race in pg_database)
    finally:
        await admin.close()
