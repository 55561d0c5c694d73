-- Replay: a subscription may be sent an event again, as a new delivery with the same event id
-- (webhook-id). The fan-out still makes at most one delivery per (subscription, event); each
-- replay's deliveries carry the id of that replay instead.
ALTER TABLE deliveries ADD COLUMN replay_id uuid;
ALTER TABLE deliveries DROP CONSTRAINT deliveries_subscription_id_event_id_key;
CREATE UNIQUE INDEX deliveries_fanned_out ON deliveries (subscription_id, event_id) WHERE replay_id IS NULL;

-- Every domain event is now stored (replay may send one that matched nobody when it happened)
-- and kept HERALD_EVENT_RETENTION. Replay scans a window of some topics; pruning, the oldest.
CREATE INDEX webhook_events_window ON webhook_events (topic, created_at, id);
CREATE INDEX webhook_events_age ON webhook_events (created_at);

-- The newest event pruned so far: a replay window that starts at or before it may miss events.
CREATE TABLE events_pruned (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    through timestamptz NOT NULL
);
