"""The moving half of webhook delivery: the subscription index, fan-out, the worker with its
sender, retries, breakers and recorder, riding out database outages, and auth's user events."""
