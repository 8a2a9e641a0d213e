"""What the handlers need, built once at start-up: settings, the matcher, the worker pool, caches, stores."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from lookalike.analysis import analyzer
from lookalike.config import Settings
from lookalike.faces import DetectOptions
from lookalike.images import ImageLimits
from lookalike.matcher import Matcher
from lookalike.pool import PoolEvent, WorkerPool
from lookalike.telegram.feedback import FeedbackStore
from lookalike.telegram.limits import PhotoAllowance
from lookalike.telegram.metrics import Metrics
from lookalike.telegram.results import ResultCache

log = logging.getLogger("lookalike.bot")

TELEGRAM_DOWNLOAD_LIMIT = 20 * 1024 * 1024  # bytes: getFile refuses bigger files
JOB_TIMEOUT = 30.0  # seconds a worker may spend on one photo before it is replaced


@dataclass
class Service:
    settings: Settings
    matcher: Matcher
    pool: WorkerPool
    results: ResultCache
    allowance: PhotoAllowance
    feedback: FeedbackStore
    metrics: Metrics
    detect: DetectOptions
    limits: ImageLimits

    @classmethod
    async def start(cls, settings: Settings, metrics: Metrics | None = None) -> Service:
        """Load the catalog (fails fast with a clear error) and start the workers (models loaded before serving)."""
        metrics = metrics or Metrics()
        matcher = await asyncio.to_thread(Matcher, settings.assets, settings.ef_search, settings.min_similarity)

        def on_event(event: PoolEvent) -> None:
            metrics.worker_events.labels(event.value).inc()
            if event in (PoolEvent.DIED, PoolEvent.TIMED_OUT):
                log.warning("worker replaced", extra={"event": event.value})

        pool = WorkerPool(settings.workers, analyzer, settings.queue_size, on_event=on_event)
        await pool.start()
        metrics.watch_pool(lambda: pool.queue_depth, lambda: pool.busy_workers, lambda: pool.restarts)
        log.info(
            "ready",
            extra={"persons": len(matcher.store.persons), "photos": len(matcher.store.photos), "workers": pool.size},
        )
        return cls(
            settings=settings,
            matcher=matcher,
            pool=pool,
            results=ResultCache(),
            allowance=PhotoAllowance(settings.photos_per_minute),
            feedback=await asyncio.to_thread(FeedbackStore, settings.feedback_db),
            metrics=metrics,
            detect=DetectOptions(settings.detect_max_side, jitters=settings.jitters, max_faces=settings.max_faces),
            limits=ImageLimits(max_bytes=TELEGRAM_DOWNLOAD_LIMIT),
        )

    async def close(self) -> None:
        await self.pool.close()
