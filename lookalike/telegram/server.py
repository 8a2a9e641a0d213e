"""Our HTTP endpoint (tornado, already a PTB dependency): the webhook, ``/healthz`` and Prometheus ``/metrics``.

Our own rather than PTB's ``run_webhook`` so the health and metrics routes share the port and so the secret token
is compared in constant time.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from typing import TYPE_CHECKING

import tornado.httpserver
import tornado.web
from prometheus_client import CONTENT_TYPE_LATEST
from telegram import Update
from telegram.ext import Application

from lookalike.logs import Throttled
from lookalike.telegram.journal import is_photo_update
from lookalike.telegram.metrics import Metrics
from lookalike.telegram.sqlite import StorageError

if TYPE_CHECKING:
    from lookalike.telegram.service import Service

log = logging.getLogger(__name__)
throttled = Throttled(log)
WEBHOOK_PATH = "/telegram"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_UPDATE_BYTES = 1024 * 1024


class WebhookHandler(tornado.web.RequestHandler):
    def initialize(self, app: Application, secret: str, service: Service) -> None:
        self.app, self.secret, self.service = app, secret, service

    async def post(self) -> None:
        """Journal a photo update before answering 200 (Telegram then forgets it): a crash loses nothing."""
        given = self.request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), self.secret.encode()):
            self.service.metrics.webhook_rejected.inc()
            log.warning("webhook call with a wrong secret", extra={"remote": self.request.remote_ip})
            self.send_error(403)
            return
        try:
            raw = json.loads(self.request.body)
        except ValueError:
            raw = None
        if not isinstance(raw, dict) or not isinstance(raw.get("update_id"), int):
            log.warning("webhook body is not an update", extra={"type": type(raw).__name__})
            self.send_error(400)
            return
        try:
            update = Update.de_json(raw, self.app.bot)
        except Exception as exc:  # an update we cannot parse: acknowledged and skipped, or Telegram resends it forever
            throttled.warning(
                "poison",
                "skipped an update that cannot be parsed",
                update_id=raw["update_id"],
                error=type(exc).__name__,
            )
            self.set_status(200)
            return
        try:
            known = await asyncio.to_thread(self.service.journal.accept, [raw] if is_photo_update(raw) else [])
        except StorageError as exc:
            throttled.warning("journal", "journal unavailable", error=str(exc))
            known = set()
        if update.update_id not in known:
            await self.app.update_queue.put(update)
        self.set_status(200)


class HealthHandler(tornado.web.RequestHandler):
    def initialize(self, service: Service) -> None:
        self.service = service

    def get(self) -> None:
        """200 while the bot can serve; 503 with the reason once it cannot (polling refused, workers gone)."""
        health, pool = self.service.health, self.service.pool
        self.set_header("Content-Type", "application/json")
        if not health.ok:
            self.set_status(503)
        status = {"status": "ok" if health.ok else "down", "problem": health.problem}
        self.write({**status, "workers": pool.size, "busy": pool.busy_workers, "queue": pool.queue_depth})


class MetricsHandler(tornado.web.RequestHandler):
    def initialize(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def get(self) -> None:
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.write(self.metrics.exposition())


class HttpServer:
    """Webhook (when a secret is given) plus health and metrics, on one address."""

    def __init__(
        self, app: Application, metrics: Metrics, service: Service, secret: str | None, path: str = WEBHOOK_PATH
    ) -> None:
        routes: list = [
            ("/healthz", HealthHandler, {"service": service}),
            ("/metrics", MetricsHandler, {"metrics": metrics}),
        ]
        if secret is not None:
            routes.append((path, WebhookHandler, {"app": app, "secret": secret, "service": service}))
        self._app = tornado.web.Application(routes)
        self._server: tornado.httpserver.HTTPServer | None = None

    async def start(self, address: str, port: int) -> None:
        self._server = tornado.httpserver.HTTPServer(self._app, max_body_size=MAX_UPDATE_BYTES)
        self._server.listen(port, address)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            await self._server.close_all_connections()
