-- Every resource type lives in this one table: the columns every type has, and its writable
-- fields in `doc` (as the API shows them; times normalized to RFC 3339 UTC with milliseconds, so
-- that text order is time order). A type needs no DDL of its own; the indexes below make the
-- declared filters and sorts of `event` and `location` fast (a new type adds its own in a new
-- migration when it grows).
CREATE TABLE resources (
    id uuid PRIMARY KEY,
    type text NOT NULL,
    owner_id uuid NOT NULL,
    status text,                        -- workflow state; NULL for types without a workflow
    version integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    doc jsonb NOT NULL,
    search tsvector NOT NULL DEFAULT ''::tsvector
);

-- Generic orders and look-ups, any type.
CREATE INDEX resources_created ON resources (type, created_at, id);
CREATE INDEX resources_updated ON resources (type, updated_at, id);
CREATE INDEX resources_owner ON resources (type, owner_id, created_at, id);
CREATE INDEX resources_search ON resources USING gin (search);

-- Events: pages by start time (everyone's, and by status), their tags and their location.
CREATE INDEX events_starts ON resources ((doc -> 'startsAt'), id) WHERE type = 'event';
CREATE INDEX events_status_starts ON resources (status, (doc -> 'startsAt'), id) WHERE type = 'event';
CREATE INDEX events_owner_starts ON resources (owner_id, (doc -> 'startsAt'), id) WHERE type = 'event';
CREATE INDEX events_ends ON resources ((doc -> 'endsAt'), id) WHERE type = 'event';
CREATE INDEX events_tags ON resources USING gin ((doc -> 'tags')) WHERE type = 'event';
CREATE INDEX events_location ON resources ((doc -> 'locationId')) WHERE type = 'event';

-- Locations: by name.
CREATE INDEX locations_name ON resources ((doc -> 'name'), id) WHERE type = 'location';

-- The transitions of a resource's workflow, oldest first.
CREATE TABLE history (
    seq bigserial PRIMARY KEY,
    resource_id uuid NOT NULL,
    actor_id uuid,
    from_status text,
    to_status text NOT NULL,
    comment text,
    request_id text,
    at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX history_resource ON history (resource_id, seq);

-- Idempotency-Key: the first response to a POST, replayed to its retries for a while.
CREATE TABLE idempotency_keys (
    owner_id uuid NOT NULL,
    key text NOT NULL,
    fingerprint bytea NOT NULL,         -- sha256 of method, path and body: another body is a 422
    status integer NOT NULL,
    headers jsonb NOT NULL,
    body bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (owner_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
