-- Webhook events, stored once with the exact bytes every attempt signs and sends.
CREATE TABLE webhook_events (
    id uuid PRIMARY KEY,                -- the domain event id: webhook-id on every attempt
    topic text NOT NULL,
    body bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- One delivery per (subscription, event). PostgreSQL holds the truth: a pending delivery is
-- due at next_attempt_at; RabbitMQ only carries its id to a worker sooner.
CREATE TABLE deliveries (
    id uuid PRIMARY KEY,
    subscription_id uuid NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    event_id uuid NOT NULL REFERENCES webhook_events (id),
    topic text NOT NULL,
    status text NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed', 'skipped')),
    lane text NOT NULL DEFAULT 'first' CHECK (lane IN ('first', 'retry')),
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz,        -- when pending: due from then on
    lease_until timestamptz,            -- a worker is attempting it until then (or died doing so)
    enqueued_at timestamptz,            -- its id was last put on a lane then (NULL: no message out)
    last_status_code integer,
    last_error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (subscription_id, event_id)
);
-- The sweeper's scan: only pending rows, by due time.
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
-- The delivery log of one subscription, newest first.
CREATE INDEX deliveries_log ON deliveries (subscription_id, created_at DESC, id DESC);
CREATE INDEX deliveries_event ON deliveries (event_id);

-- Every attempt: when, what the receiver answered (or why it could not), and how long it took.
CREATE TABLE delivery_attempts (
    id bigserial PRIMARY KEY,
    delivery_id uuid NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    attempted_at timestamptz NOT NULL,
    status_code integer,
    duration_ms double precision NOT NULL,
    error text,
    response_body text NOT NULL DEFAULT ''    -- the first 1 KiB
);
CREATE INDEX delivery_attempts_delivery ON delivery_attempts (delivery_id, id);
