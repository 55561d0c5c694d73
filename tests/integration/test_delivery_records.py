"""Recording an attempt is guarded: only the attempt a lease started is recorded, and once. A
write that comes late (held up by a database outage, or replayed after its answer was lost)
must not turn a delivery that moved on back to pending, nor count an attempt twice."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import asyncpg
import pytest

from services.webhook_delivery.store.delivery_repo import (
    FAILED,
    PENDING,
    RETRY,
    Claimed,
    DeliveryRepo,
    Outcome,
)
from tests.delivery_support import attempts_of, insert_subscription, wait_until

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def repo(conn: asyncpg.Connection) -> DeliveryRepo:
    return DeliveryRepo(conn)


def _outcome(code: int | None) -> Outcome:
    error = None if code is not None and code < 300 else f"the receiver answered {code}"
    return Outcome(code, 12.5, error, "", datetime.now(UTC))


async def _leased_with_a_lease_that_ran_out(conn: asyncpg.Connection) -> Claimed:
    """A first attempt the fan-out leased to a worker whose lease has run out already."""
    sub = await insert_subscription(conn, "http://127.0.0.1:9/hook", ["location.created"])
    delivery_id = uuid.uuid4()
    stored = await DeliveryRepo(conn).fan_out(
        uuid.uuid4(),
        "location.created",
        b"{}",
        [(delivery_id, sub["id"], PENDING)],
        leased={delivery_id},
        lease_seconds=0.0,
    )
    assert stored is not None
    [claimed] = stored.leased
    return claimed


async def _claim_again(conn: asyncpg.Connection, delivery_id: uuid.UUID) -> Claimed:
    """Another worker's claim, once the earlier lease has run out."""
    return await wait_until(  # type: ignore[no-any-return]
        lambda: DeliveryRepo(conn).claim(delivery_id, 60.0), what="the lease to run out"
    )


async def _two_leases(conn: asyncpg.Connection) -> tuple[Claimed, Claimed]:
    """The first worker's lease, run out, and the second worker's, taken since."""
    first = await _leased_with_a_lease_that_ran_out(conn)
    return first, await _claim_again(conn, first.id)


async def _state(conn: asyncpg.Connection, delivery_id: uuid.UUID) -> tuple[str, int, int]:
    row = await conn.fetchrow("SELECT status, attempts FROM deliveries WHERE id = $1", delivery_id)
    assert row is not None
    return row["status"], row["attempts"], len(await attempts_of(conn, delivery_id))


async def test_a_delayed_failure_does_not_reopen_a_delivery_another_worker_sent(
    conn: asyncpg.Connection, repo: DeliveryRepo
) -> None:
    # The first worker's attempt failed, but recording it waits out an outage; meanwhile its
    # lease ran out, a second worker claimed the delivery, sent it, and recorded the success.
    first, second = await _two_leases(conn)
    assert await repo.record_successes([(second, _outcome(200))]) == 1
    assert await _state(conn, first.id) == ("succeeded", 1, 1)
    # The first worker's write arrives now: it changes nothing.
    assert not await repo.record_failure(first, _outcome(503), PENDING, 0.0, RETRY)
    assert await _state(conn, first.id) == ("succeeded", 1, 1)
    # The success replayed (its answer was lost on the way back) is not counted twice.
    assert await repo.record_successes([(second, _outcome(200))]) == 0
    assert await _state(conn, first.id) == ("succeeded", 1, 1)


async def test_a_delayed_write_does_not_record_over_the_lease_another_worker_holds(
    conn: asyncpg.Connection, repo: DeliveryRepo
) -> None:
    first, second = await _two_leases(conn)
    # The first worker's late success and late failure both find another worker's lease.
    assert await repo.record_successes([(first, _outcome(200))]) == 0
    assert not await repo.record_failure(first, _outcome(500), FAILED, None, RETRY)
    row = await conn.fetchrow("SELECT status, attempts, lease_until FROM deliveries WHERE id = $1", first.id)
    assert row is not None
    assert (row["status"], row["attempts"], row["lease_until"]) == (PENDING, 0, second.lease_until)
    # The lease holder records its own attempt, once; a replay of the same write is not counted.
    assert await repo.record_failure(second, _outcome(503), PENDING, 0.0, RETRY)
    assert not await repo.record_failure(second, _outcome(503), PENDING, 0.0, RETRY)
    assert await _state(conn, first.id) == (PENDING, 1, 1)
    # The retry's claim is a new lease: a write of the earlier one does not end the delivery.
    third = await _claim_again(conn, first.id)
    assert third.attempts == 1 and third.lease_until != second.lease_until
    assert not await repo.record_failure(second, _outcome(500), FAILED, None, RETRY)
    assert await repo.record_failure(third, _outcome(500), FAILED, None, RETRY)
    assert await _state(conn, first.id) == (FAILED, 2, 2)
    # A failed delivery is not rewritten by a late success either.
    assert await repo.record_successes([(third, _outcome(200))]) == 0
    assert await _state(conn, first.id) == (FAILED, 2, 2)


async def test_a_renewed_lease_is_still_the_same_workers(
    conn: asyncpg.Connection, repo: DeliveryRepo
) -> None:
    first, held = await _two_leases(conn)
    renewed = await repo.extend_lease(held, 60.0)
    assert renewed is not None and renewed.lease_until > held.lease_until
    assert await repo.extend_lease(first, 60.0) is None  # an earlier lease is not renewed
    assert await repo.record_successes([(held, _outcome(200))]) == 0  # the old end is stale
    assert await repo.record_successes([(renewed, _outcome(200))]) == 1
    assert await _state(conn, first.id) == ("succeeded", 1, 1)
