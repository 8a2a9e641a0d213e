"""Prometheus metrics of one bot process, in their own registry (so tests can run several bots side by side)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("lookalike_requests", "Photos handled, by outcome", ["outcome"], registry=self.registry)
        self.faces = Histogram(
            "lookalike_faces_per_photo", "Faces found per photo", buckets=(0, 1, 2, 3, 5, 10), registry=self.registry
        )
        self.stage = Histogram(
            "lookalike_stage_seconds",
            "Time per stage of a photo",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.telegram_errors = Counter(
            "lookalike_telegram_errors", "Bot API errors, by kind", ["kind"], registry=self.registry
        )
        self.worker_events = Counter(
            "lookalike_worker_events",
            "Worker pool events (died, timed_out, rejected, started)",
            ["event"],
            registry=self.registry,
        )
        self.updates = Counter("lookalike_updates", "Updates received, by kind", ["kind"], registry=self.registry)
        self.webhook_rejected = Counter(
            "lookalike_webhook_rejected", "Webhook calls without the right secret", registry=self.registry
        )

    def watch_pool(self, depth: Callable[[], int], busy: Callable[[], int], restarts: Callable[[], int]) -> None:
        """Gauges read from the pool at scrape time."""
        Gauge("lookalike_queue_depth", "Photos waiting for a worker", registry=self.registry).set_function(depth)
        Gauge("lookalike_busy_workers", "Workers analysing a photo", registry=self.registry).set_function(busy)
        Gauge(
            "lookalike_worker_restarts", "Workers replaced after dying or hanging", registry=self.registry
        ).set_function(restarts)

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        """Observe the seconds the ``with`` block took as ``stage`` (only when it finishes without raising)."""
        started = time.perf_counter()
        yield
        self.stage.labels(stage).observe(time.perf_counter() - started)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
