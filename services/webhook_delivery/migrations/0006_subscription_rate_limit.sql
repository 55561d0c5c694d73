-- When each attempt was due (the delivery's next_attempt_at when it was claimed): how late
-- attempts start is `attempted_at - due_at`.
ALTER TABLE delivery_attempts ADD COLUMN due_at timestamptz;

-- At most rate_limit attempts start per second for a subscription (NULL: no limit), across
-- every worker process: they share the subscription's line of one-second windows below.
ALTER TABLE subscriptions ADD COLUMN rate_limit integer CHECK (rate_limit BETWEEN 1 AND 10000);

-- The last window (Unix second) a subscription's slots were handed out in, and how many of
-- its slots are taken: windows fill one after the other, so none holds more than the limit,
-- and waiting deliveries get theirs in the order they asked. One row a subscription, written
-- over as the windows move on (nothing old to clean up); it goes with its subscription.
CREATE TABLE rate_windows (
    subscription_id uuid PRIMARY KEY REFERENCES subscriptions (id) ON DELETE CASCADE,
    window_at bigint NOT NULL,
    used integer NOT NULL,
    granted integer NOT NULL            -- how many slots the last reservation got
);

-- A delivery made to wait for its slot: the window it holds one in (it starts at that window,
-- next_attempt_at, and needs no other slot then).
ALTER TABLE deliveries ADD COLUMN rate_slot bigint;
