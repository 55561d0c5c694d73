-- Operational events (subscription.disabled, .failing, .recovered, delivery.failed) are written
-- here in the same transaction as the change they report, and relayed to the domain exchange
-- (shared/outbox.py), whence the fan-out delivers them like any other event.
CREATE TABLE outbox (
    seq bigserial PRIMARY KEY,
    id uuid NOT NULL UNIQUE,
    topic text NOT NULL,
    body bytea NOT NULL,
    headers jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at timestamptz
);
CREATE INDEX outbox_unsent ON outbox (seq) WHERE sent_at IS NULL;
CREATE INDEX outbox_sent ON outbox (sent_at) WHERE sent_at IS NOT NULL;  -- pruning

-- When subscription.failing was raised for the current run of failures (NULL: not raised): a
-- run raises it once, and its first success then raises subscription.recovered.
ALTER TABLE subscriptions ADD COLUMN failing_reported_at timestamptz;
