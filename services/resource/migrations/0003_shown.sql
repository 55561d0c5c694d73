-- Each resource as GET returns it, rendered once when it is written (the service keeps it exact
-- on every write): a GET answers these bytes and a list page joins them, with no work per item
-- on the read path. `json`, not `jsonb`: kept as written, field order included.
--
-- Measured against building each item in PostgreSQL at read time (json_build_object and two
-- to_char per row), list-50 at 1,000 events, CPU per request: resource 0.32-0.37 ms and
-- PostgreSQL 0.11-0.14 ms stored, against 0.38-0.45 ms and 0.42-0.46 ms built at read time
-- (0.87-0.98 ms and 0.19-0.23 ms before either). bench/results/list-prototypes-20261202.json.
ALTER TABLE resources ADD COLUMN shown json;

-- The rows already there, as services/resource/documents.py `representation` renders them
-- (every declared field in declared order, absent ones null, lists []; times in UTC with
-- milliseconds). A type other than these two has no rows before this migration; SET NOT NULL
-- fails loudly rather than leave one unrendered.
UPDATE resources SET shown = CASE type
    WHEN 'event' THEN json_build_object(
        'id', id,
        'title', doc -> 'title',
        'description', doc -> 'description',
        'startsAt', doc -> 'startsAt',
        'endsAt', doc -> 'endsAt',
        'locationId', doc -> 'locationId',
        'capacity', doc -> 'capacity',
        'tags', coalesce(doc -> 'tags', '[]'),
        'status', status,
        'ownerId', owner_id,
        'createdAt', to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
        'updatedAt', to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
        'version', version)
    WHEN 'location' THEN json_build_object(
        'id', id,
        'name', doc -> 'name',
        'address', doc -> 'address',
        'capacity', doc -> 'capacity',
        'timezone', doc -> 'timezone',
        'ownerId', owner_id,
        'createdAt', to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
        'updatedAt', to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
        'version', version)
    END;

ALTER TABLE resources ALTER COLUMN shown SET NOT NULL;
