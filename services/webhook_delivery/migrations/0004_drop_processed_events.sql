-- processed_events was never read or written: a redelivered domain event is handled once because
-- webhook_events is keyed by the event id and deliveries are unique per (subscription, event).
DROP TABLE IF EXISTS processed_events;
