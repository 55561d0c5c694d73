-- Domain events already fanned out, so that a redelivered message is handled once.
CREATE TABLE processed_events (
    id uuid PRIMARY KEY,
    processed_at timestamptz NOT NULL DEFAULT now()
);
