-- Subscriptions: a URL and the topics it wants. The delivery worker reads these rows (and keeps
-- an in-memory index of them); the API owns writing them.
CREATE TABLE subscriptions (
    id uuid PRIMARY KEY,
    owner_id uuid NOT NULL,
    -- The owner's roles, kept current from auth's user events: fan-out only sends what the
    -- owner may read (approved events to everyone, the rest to owner, approvers and admins).
    owner_roles text[] NOT NULL DEFAULT '{member}',
    url text NOT NULL,
    url_key text NOT NULL,              -- the normalized URL: one subscription per owner and URL
    topics text[] NOT NULL,             -- catalog names or patterns (`event.*`, `*`)
    description text NOT NULL DEFAULT '',
    headers jsonb NOT NULL DEFAULT '{}',
    active boolean NOT NULL DEFAULT true,
    disabled_reason text,               -- why it was disabled (410, failing for days, owner deleted)
    secret text NOT NULL,               -- whsec_...
    previous_secret text,               -- still signs until previous_secret_until
    previous_secret_until timestamptz,
    failing_since timestamptz,          -- first failure of the current run of failures
    version integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (owner_id, url_key)
);
CREATE INDEX subscriptions_owner ON subscriptions (owner_id, id);
CREATE INDEX subscriptions_created ON subscriptions (created_at, id);

-- Every change to a subscription notifies this channel, so each worker's in-memory index
-- reloads the row (see the trigger below).
CREATE FUNCTION subscriptions_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('webhook_delivery_subscriptions', COALESCE(NEW.id, OLD.id)::text);
    RETURN NULL;
END $$;
CREATE TRIGGER subscriptions_changed AFTER INSERT OR UPDATE OR DELETE ON subscriptions
    FOR EACH ROW EXECUTE FUNCTION subscriptions_notify();
