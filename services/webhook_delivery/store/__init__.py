"""The SQL of webhook delivery, used by the API and the engine alike."""
