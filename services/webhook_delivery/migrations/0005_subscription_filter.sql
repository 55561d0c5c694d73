-- Subscription filters: conditions on the event envelope that an event of the subscription's
-- topics must meet to be delivered (services/webhook_delivery/filters.py, docs/filters.md).
-- NULL: no filter. The API checks a filter before it writes one; the fan-out compiles it when
-- it loads the row into its in-memory index.
ALTER TABLE subscriptions ADD COLUMN filter jsonb;
