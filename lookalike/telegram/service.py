"""What the handlers share, built once at start-up: settings, the lookup, the worker pool, caches, stores."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from lookalike.engine.images import ImageLimits
from lookalike.engine.jobs import load_models
from lookalike.engine.lookup import Lookup
from lookalike.engine.matcher import Matcher, MatchSex
from lookalike.engine.pool import PoolEvent, WorkerPool
from lookalike.logs import Throttled
from lookalike.settings import Settings
from lookalike.telegram.feedback import FeedbackStore
from lookalike.telegram.journal import Journal
from lookalike.telegram.limits import MemoryBudget, PhotoAllowance
from lookalike.telegram.metrics import Metrics
from lookalike.telegram.preferences import PreferenceStore
from lookalike.telegram.results import ResultCache
from lookalike.telegram.sqlite import StorageError

log = logging.getLogger(__name__)
storage_errors = Throttled(log)

TELEGRAM_DOWNLOAD_LIMIT = 20 * 1024 * 1024  # bytes: getFile refuses bigger files
JOB_TIMEOUT = 30.0  # seconds a worker may spend on one photo before it is replaced


class Health:
    """What ``/healthz`` says: ok until something the bot cannot recover from happens, then why."""

    def __init__(self) -> None:
        self.problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def fail(self, problem: str) -> None:
        self.problem = self.problem or problem


@dataclass
class Service:
    settings: Settings
    lookup: Lookup
    pool: WorkerPool
    results: ResultCache
    allowance: PhotoAllowance
    memory: MemoryBudget
    feedback: FeedbackStore
    journal: Journal
    preferences: PreferenceStore
    metrics: Metrics
    health: Health

    @classmethod
    async def start(cls, settings: Settings, metrics: Metrics | None = None) -> Service:
        """Load the catalog and open the stores (fail fast, with one clear error: AssetsError or StorageError) while
        the workers start and load their models: both take seconds at a million photos, and neither needs the other.
        """
        metrics = metrics or Metrics()

        def on_event(event: PoolEvent) -> None:
            metrics.worker_events.labels(event.value).inc()
            if event in (PoolEvent.DIED, PoolEvent.TIMED_OUT):
                log.warning("worker replaced", extra={"event": event.value})

        pool = WorkerPool(settings.workers, load_models, settings.queue_size, on_event=on_event)
        starting = asyncio.create_task(pool.start())
        try:
            matcher = await asyncio.to_thread(Matcher, settings.assets, settings.ef_search, settings.min_similarity)
            await asyncio.to_thread(matcher.catalog.check_thumbs)
            feedback = await asyncio.to_thread(FeedbackStore, settings.feedback_db)
            await starting
        except BaseException:
            await asyncio.gather(starting, return_exceptions=True)  # then stop the workers that came up
            await pool.close()
            raise
        metrics.watch_pool(lambda: pool.queue_depth, lambda: pool.busy_workers, lambda: pool.restarts)
        log.info(
            "ready",
            extra={"persons": matcher.catalog.n_persons, "photos": matcher.catalog.n_photos, "workers": pool.size},
        )
        return cls(
            settings=settings,
            lookup=Lookup(matcher, settings.detect, ImageLimits(max_bytes=TELEGRAM_DOWNLOAD_LIMIT), settings.top_k),
            pool=pool,
            results=ResultCache(),
            allowance=PhotoAllowance(settings.photos_per_minute),
            memory=MemoryBudget(settings.photo_memory_mb * 2**20),
            feedback=feedback,
            journal=Journal(settings.feedback_db),
            preferences=PreferenceStore(settings.feedback_db),
            metrics=metrics,
            health=Health(),
        )

    def person_name(self, person_id: str) -> str:
        """The display name of a catalog person (the id itself for one no longer in the catalog)."""
        person = self.lookup.matcher.catalog.person(person_id)
        return person.name if person else person_id

    async def match_sex(self, user_id: int) -> MatchSex:
        """Whom the user's photos are matched with: their /settings choice, else the bot's default. A store that
        cannot be read costs the choice, never the answer."""
        try:
            chosen = await asyncio.to_thread(self.preferences.match_sex, user_id)
        except StorageError as exc:
            storage_errors.warning("preferences", "preference not read", error=str(exc))
            return self.settings.match_sex
        return chosen or self.settings.match_sex

    async def close(self) -> None:
        await self.pool.close()
