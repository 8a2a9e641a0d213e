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

from lookalike.config import Settings
from lookalike.telegram import handlers
from lookalike.telegram.limits import PacedRateLimiter
from lookalike.telegram.metrics import Metrics
from lookalike.telegram.server import WEBHOOK_PATH, HttpServer
from lookalike.telegram.service import Service
from lookalike.telegram.texts import TEXTS

log = logging.getLogger("lookalike.bot")
ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY]  # not edits: an edited caption is not a new photo
CONCURRENT_UPDATES = 256  # updates handled at once: photos wait in the pool's queue, /help never waits


def build_application(settings: Settings, service: Service, polling: bool) -> Application:
    builder = (
        ApplicationBuilder()
        .token(settings.token)
        .base_url(settings.base_url)
        .base_file_url(settings.base_file_url)
        .rate_limiter(PacedRateLimiter())
        # answers quote the photo they are about (users send several at once), unless it was deleted meanwhile
        .defaults(Defaults(do_quote=True, allow_sending_without_reply=True))
        .concurrent_updates(CONCURRENT_UPDATES)
        .connect_timeout(10)
        .read_timeout(settings.api_timeout)
        .write_timeout(settings.api_timeout)
        .get_updates_read_timeout(40)
    )
    if not polling:
        builder = builder.updater(None)
    app = builder.build()
    app.bot_data["service"] = service
    private = filters.ChatType.PRIVATE
    new = filters.UpdateType.MESSAGE  # never edited or business messages
    app.add_handler(TypeHandler(Update, _count_update), group=-1)
    app.add_handlers(
        [
            CommandHandler(["start", "help"], handlers.on_help, filters=new),
            CommandHandler("lookalike", handlers.on_lookalike, filters=new),
            CommandHandler("stats", handlers.on_stats, filters=new),
            MessageHandler(filters.PHOTO & new, handlers.on_photo),
            MessageHandler((filters.ANIMATION | filters.VIDEO | filters.VIDEO_NOTE) & private & new, handlers.on_video),
            MessageHandler(filters.Document.ALL & new, handlers.on_document),
            MessageHandler(filters.Sticker.ALL & private & new, handlers.on_sticker),
            MessageHandler(filters.TEXT & ~filters.COMMAND & private & new, handlers.on_text),
            MessageHandler(filters.COMMAND & private & new, handlers.on_help),  # a command we don't know: help
            MessageHandler(private & new & ~filters.COMMAND & ~filters.StatusUpdate.ALL, handlers.on_other),
            CallbackQueryHandler(handlers.on_button),
        ]
    )
    app.add_error_handler(_on_error)
    return app


async def _count_update(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    kind = "callback_query" if update.callback_query else "message" if update.message else "other"
    context.bot_data["service"].metrics.updates.labels(kind).inc()


async def _on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """One log line per failed update (its id, not its content); the bot carries on."""
    error = context.error
    service: Service = context.bot_data["service"]
    service.metrics.telegram_errors.labels(type(error).__name__).inc()
    update_id = update.update_id if isinstance(update, Update) else None
    log.warning("update failed", extra={"update_id": update_id, "error": type(error).__name__, "detail": str(error)})


async def register_commands(app: Application) -> None:
    for lang, texts in TEXTS.items():
        commands = [BotCommand(c, texts[f"cmd_{c}"]) for c in ("start", "help", "lookalike")]
        await app.bot.set_my_commands(commands, language_code=None if lang == "en" else lang)


def webhook_secret(settings: Settings) -> str:
    """The configured secret, or one made for this run (Telegram accepts 1-256 of A-Z a-z 0-9 _ -)."""
    return settings.webhook_secret or secrets.token_urlsafe(32)


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    """Run until ``stop`` is set; then finish the updates in hand, answer pending photos, stop the workers.

    Order matters: handlers and the HTTP server are up before Telegram is told where to send updates, and on the
    way down updates stop coming before the ones in hand are finished.
    """
    metrics = Metrics()
    service = await Service.start(settings, metrics)
    polling = not settings.webhook_url
    app = build_application(settings, service, polling)
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
                if polling:
                    await app.bot.delete_webhook(drop_pending_updates=False)
                    await app.updater.start_polling(allowed_updates=ALLOWED_UPDATES, drop_pending_updates=False)
                else:
                    await app.bot.set_webhook(
                        settings.webhook_url, secret_token=secret, allowed_updates=ALLOWED_UPDATES
                    )
                log.info("serving", extra={"mode": "polling" if polling else "webhook"})
                await stop.wait()
                log.info("stopping: finishing updates in hand")
            finally:
                if polling and app.updater.running:
                    await app.updater.stop()
                if server is not None:
                    await server.stop()
                await app.stop()
    finally:
        await service.close()
        log.info("stopped")
