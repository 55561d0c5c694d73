-- Statistics of each subscription's attempts per minute, hour and day, so GET .../stats reads
-- one row (two at most) per bucket it answers with instead of every attempt. Kept by a trigger
-- on delivery_attempts: every path that records an attempt (the group-committed successes, a
-- failure and its retry) adds to it in the same statement, so it is exactly as durable as the
-- attempts themselves.

-- Running workers write these three tables in this order (a delivery, its attempt, then the
-- subscription); the steps below lock them too (the foreign key, the trigger, the backfill, the
-- index). Taken up front in the workers' order, a worker in mid-transaction is waited for
-- instead of deadlocking with this.
LOCK TABLE deliveries, delivery_attempts, subscriptions IN SHARE ROW EXCLUSIVE MODE;

CREATE TABLE delivery_stats (
    subscription_id uuid NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    span text NOT NULL CHECK (span IN ('minute', 'hour', 'day')),
    start timestamptz NOT NULL,         -- the UTC minute, hour or day the attempts started in
    -- Successes and failures go in separate rows: a failure's transaction keeps its rows locked
    -- while it goes on to update the subscription (the failure run), which a success statement
    -- may have locked first (ending the run); sharing rows, the two could deadlock.
    delivered boolean NOT NULL,
    attempts integer NOT NULL,          -- attempts started in the span
    failed integer NOT NULL,            -- ... after which the delivery was given up
    -- Attempt durations: a count per fixed log-scale bucket (delivery_duration_bucket).
    durations integer[] NOT NULL,
    -- Which of a few rows per bucket this is (the writing backend's pid, modulo 4): a failure's
    -- transaction holds its rows until it commits, so with one row per bucket every failure of a
    -- busy subscription would wait for the one before it. Readers add the rows up.
    shard smallint NOT NULL DEFAULT 0,
    PRIMARY KEY (subscription_id, span, start, delivered, shard)
);

-- 72 buckets, four per doubling: 1 is under 1 ms; k (2..71) holds [2^((k-2)/4), 2^((k-1)/4)) ms;
-- 72 everything from 2^17.5 ms (about 3 minutes) on. store/stats_repo.py reads them back.
CREATE FUNCTION delivery_duration_bucket(ms double precision) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN ms < 1 THEN 1 ELSE least(72, 2 + floor(4 * ln(ms) / ln(2))::integer) END;

CREATE FUNCTION delivery_duration_histogram(ms double precision[]) RETURNS integer[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN (
        SELECT array_agg(coalesce(h.n, 0) ORDER BY k)
        FROM generate_series(1, 72) AS k
        LEFT JOIN (
            SELECT delivery_duration_bucket(v) AS b, count(*)::integer AS n FROM unnest(ms) AS v GROUP BY 1
        ) AS h ON h.b = k
    );

-- The spans, with the width date_bin cuts each into (from a UTC midnight).
CREATE VIEW delivery_stats_spans (span, width) AS
    VALUES ('minute', interval '1 minute'), ('hour', interval '1 hour'), ('day', interval '1 day');

CREATE FUNCTION delivery_stats_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- The delivery's status is this attempt's outcome: the same statement updated it, and
    -- holds its row. Rows in key order, so that two statements never lock them crosswise.
    INSERT INTO delivery_stats AS s (subscription_id, span, start, delivered, attempts, failed, durations, shard)
    SELECT d.subscription_id, w.span, date_bin(w.width, a.attempted_at, '2000-01-01 00:00:00+00'),
        a.error IS NULL, count(*), count(*) FILTER (WHERE a.error IS NOT NULL AND d.status = 'failed'),
        delivery_duration_histogram(array_agg(a.duration_ms)), (pg_backend_pid() % 4)::smallint
    FROM added_attempts a JOIN deliveries d ON d.id = a.delivery_id CROSS JOIN delivery_stats_spans w
    GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
    ON CONFLICT (subscription_id, span, start, delivered, shard) DO UPDATE SET
        attempts = s.attempts + excluded.attempts,
        failed = s.failed + excluded.failed,
        durations = (SELECT array_agg(x + y ORDER BY i)
                     FROM unnest(s.durations, excluded.durations) WITH ORDINALITY AS t (x, y, i));
    RETURN NULL;
END $$;

CREATE TRIGGER delivery_attempts_stats AFTER INSERT ON delivery_attempts
    REFERENCING NEW TABLE AS added_attempts
    FOR EACH STATEMENT EXECUTE FUNCTION delivery_stats_add();

-- What was logged before this migration (`failed` counts a given-up delivery's last attempt).
INSERT INTO delivery_stats (subscription_id, span, start, delivered, attempts, failed, durations)
SELECT d.subscription_id, w.span, date_bin(w.width, a.attempted_at, '2000-01-01 00:00:00+00'),
    a.error IS NULL, count(*), count(*) FILTER (WHERE a.error IS NOT NULL AND d.status = 'failed' AND a.last),
    delivery_duration_histogram(array_agg(a.duration_ms))
FROM (SELECT *, id = max(id) OVER (PARTITION BY delivery_id) AS last FROM delivery_attempts) AS a
JOIN deliveries d ON d.id = a.delivery_id CROSS JOIN delivery_stats_spans w
GROUP BY 1, 2, 3, 4;

-- Deliveries still pending, by when they were created: a handful, read by subscription.
CREATE INDEX deliveries_pending_log ON deliveries (subscription_id, created_at) WHERE status = 'pending';
