"""The HTTP half of webhook delivery: subscriptions, the delivery log and its commands, their
schemas, rules and OpenAPI paths. It reaches the engine only through the lanes and the database."""
