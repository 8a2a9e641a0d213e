"""Wiring: a PTB Application with our handlers, limits and timeouts, run by polling or by our webhook server."""

from __future__ import annotations

import asyncio
import logging
import secrets
from urllib.parse import urlparse

from telegram import BotCommand, Update
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    Defaults,
    MessageHandler,
    TypeHandler,
    filters,
)

from lookalike.logs import Throttled
from lookalike.settings import Settings
from lookalike.telegram import buttons, commands, photos
from lookalike.telegram.limits import PacedRateLimiter
from lookalike.telegram.metrics import Metrics
from lookalike.telegram.polling import poll, replay
from lookalike.telegram.server import WEBHOOK_PATH, HttpServer
from lookalike.telegram.service import Service
from lookalike.telegram.sqlite import StorageError
from lookalike.telegram.texts import TEXTS

log = logging.getLogger(__name__)
failures = Throttled(log)
ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY]  # not edits: an edited caption is not a new photo
# Updates handled at once: as many photos as the pool can hold (more would only wait, holding memory), plus room
# so that /help and buttons never wait behind photos.
OTHER_UPDATES = 32


def build_application(settings: Settings, service: Service) -> Application:
    builder = (
        ApplicationBuilder()
        .token(settings.token)
        .base_url(settings.base_url)
        .base_file_url(settings.base_file_url)
        .rate_limiter(PacedRateLimiter())
        # answers quote the photo they are about (users send several at once), unless it was deleted meanwhile
        .defaults(Defaults(do_quote=True, allow_sending_without_reply=True))
        .concurrent_updates(settings.workers + settings.queue_size + OTHER_UPDATES)
        .updater(None)  # polling is ours (lookalike/telegram/polling.py)
        .connect_timeout(10)
        .read_timeout(settings.api_timeout)
        .write_timeout(settings.api_timeout)
        .get_updates_read_timeout(40)
    )
    app = builder.build()
    app.bot_data["service"] = service
    private = filters.ChatType.PRIVATE
    new = filters.UpdateType.MESSAGE  # never edited or business messages
    app.add_handler(TypeHandler(Update, _count_update), group=-1)
    app.add_handlers(
        [
            CommandHandler(["start", "help"], commands.on_help, filters=new),
            CommandHandler("lookalike", photos.on_lookalike, filters=new),
            CommandHandler("settings", commands.on_settings, filters=new),
            CommandHandler("stats", commands.on_stats, filters=new),
            MessageHandler(filters.PHOTO & new, photos.on_photo),
            MessageHandler((filters.ANIMATION | filters.VIDEO | filters.VIDEO_NOTE) & private & new, commands.on_video),
            MessageHandler(filters.Document.ALL & new, photos.on_document),
            MessageHandler(filters.Sticker.ALL & private & new, commands.on_sticker),
            MessageHandler(filters.TEXT & private & new, commands.on_help),  # text, or a command we don't know
            MessageHandler(private & new & ~filters.COMMAND & ~filters.StatusUpdate.ALL, commands.on_other),
            CallbackQueryHandler(buttons.on_button),
        ]
    )
    app.add_handler(TypeHandler(Update, _answered), group=1)
    app.add_error_handler(_on_error)
    return app


async def _count_update(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    kind = "callback_query" if update.callback_query else "message" if update.message else "other"
    context.bot_data["service"].metrics.updates.labels(kind).inc()


async def _answered(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Runs after the handlers: a journaled photo update is done (a no-op for updates never journaled)."""
    if update.message is not None and (update.message.effective_attachment or update.message.reply_to_message):
        try:
            await asyncio.to_thread(context.bot_data["service"].journal.answered, update.update_id)
        except StorageError as exc:
            failures.warning("journal", "journal unavailable", error=str(exc))


async def _on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A failed update is logged by its id, not its content, at most every few seconds; the bot carries on."""
    error = context.error
    service: Service = context.bot_data["service"]
    service.metrics.telegram_errors.labels(type(error).__name__).inc()
    update_id = update.update_id if isinstance(update, Update) else None
    failures.warning("update", "update failed", update_id=update_id, error=type(error).__name__, detail=str(error))


async def register_commands(app: Application) -> None:
    for lang, texts in TEXTS.items():
        commands = [BotCommand(c, texts[f"cmd_{c}"]) for c in ("start", "help", "lookalike", "settings")]
        await app.bot.set_my_commands(commands, language_code=None if lang == "en" else lang)


def webhook_secret(settings: Settings) -> str:
    """The configured secret, or one made for this run (Telegram accepts 1-256 of A-Z a-z 0-9 _ -)."""
    return settings.webhook_secret or secrets.token_urlsafe(32)


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    """Run until ``stop`` is set; then finish the updates in hand, answer pending photos, stop the workers.

    Raises PollingStopped (``/healthz`` already says why) when Telegram refuses us for good: the caller exits
    non-zero so that its supervisor restarts it. Order matters: handlers and the HTTP server are up before
    Telegram is told where to send updates, and on the way down updates stop coming before the ones in hand are
    finished.
    """
    metrics = Metrics()
    service = await Service.start(settings, metrics)
    polling = not settings.webhook_url
    app = build_application(settings, service)
    secret = None if polling else webhook_secret(settings)
    server = None
    if not polling or settings.metrics_port:
        path = urlparse(settings.webhook_url).path or WEBHOOK_PATH
        server = HttpServer(app, metrics, service, secret, path)
    try:
        async with app:
            await register_commands(app)
            await app.start()
            try:
                if server is not None:
                    await server.start(settings.listen, settings.metrics_port if polling else settings.port)
                await replay(app, service.journal)
                if polling:
                    await app.bot.delete_webhook(drop_pending_updates=False)
                    log.info("serving", extra={"mode": "polling"})
                    await _poll_until(app, service, stop)
                else:
                    await app.bot.set_webhook(
                        settings.webhook_url, secret_token=secret, allowed_updates=ALLOWED_UPDATES
                    )
                    log.info("serving", extra={"mode": "webhook"})
                    await stop.wait()
                log.info("stopping: finishing updates in hand")
            finally:
                if server is not None:
                    await server.stop()
                await app.stop()
    finally:
        await service.close()
        log.info("stopped")


async def _poll_until(app: Application, service: Service, stop: asyncio.Event) -> None:
    """Poll until ``stop``; if polling dies, mark the bot unhealthy at once and let the error end ``serve``."""
    try:
        await poll(app, service.journal, ALLOWED_UPDATES, stop)
    except BaseException as exc:
        service.health.fail(f"polling stopped: {type(exc).__name__}: {exc}")
        raise
