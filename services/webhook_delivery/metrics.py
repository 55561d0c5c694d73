"""Prometheus metrics of fan-out and delivery (the default registry, served at /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

FANOUT = Counter("herald_webhook_fanout_deliveries_total", "Deliveries created by fan-out", ["outcome"])
ATTEMPTS = Counter("herald_webhook_attempts_total", "Delivery attempts", ["outcome"])
ATTEMPT_LATENCY = Histogram(
    "herald_webhook_attempt_duration_seconds",
    "Time from sending a webhook to the receiver's answer (or the failure)",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30),
)
LANE_DEPTH = Gauge("herald_webhook_lane_depth", "Messages waiting on a delivery lane", ["lane"])
OPEN_BREAKERS = Gauge("herald_webhook_open_breakers", "Subscriptions whose circuit is open (this process)")
