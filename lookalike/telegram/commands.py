"""Commands and the messages that get a one-line answer: /start, /help, /stats, stickers, videos, text."""

from __future__ import annotations

import asyncio
import html
import logging

from telegram import Update
from telegram.constants import ParseMode
from telegram.ext import ContextTypes

from lookalike.telegram.feedback import LATENCY_WINDOW, Stats
from lookalike.telegram.replies import deliver, reply, service
from lookalike.telegram.service import Service
from lookalike.telegram.sqlite import StorageError

log = logging.getLogger(__name__)


async def on_help(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/start, /help, unknown commands and plain text: what the bot does."""
    await reply(update, context, "help")


async def on_sticker(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await reply(update, context, "sticker")


async def on_video(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await reply(update, context, "video")


async def on_other(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await reply(update, context, "not_a_photo")


async def on_stats(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Operators only (LOOKALIKE_ADMIN_IDS): traffic, outcomes, feedback and the most matched celebrities."""
    svc = service(context)
    user = update.effective_user
    if user is None or user.id not in svc.settings.admins:
        await reply(update, context, "admins_only")
        return
    try:
        stats = await asyncio.to_thread(svc.feedback.stats)
    except StorageError as exc:
        log.warning("stats unavailable", extra={"error": str(exc)})
        body = f"Stats unavailable: the feedback store cannot be read ({html.escape(str(exc))})."
    else:
        body = stats_text(svc, stats)
    await deliver(lambda: update.effective_message.reply_text(body, parse_mode=ParseMode.HTML), svc)


def stats_text(svc: Service, stats: Stats) -> str:
    outcomes = ", ".join(f"{k} {v}" for k, v in sorted(stats.outcomes.items())) or "none"
    top = "\n".join(f"  {html.escape(svc.person_name(p))}: {n}" for p, n in stats.top_persons)
    votes = stats.up + stats.down
    liked = f"{100 * stats.up / votes:.0f}% 👍" if votes else "no votes yet"
    return (
        f"<b>Requests</b>: {stats.requests} ({outcomes})\n<b>Faces found</b>: {stats.faces}\n"
        f"<b>Feedback</b>: {stats.up} 👍 / {stats.down} 👎 ({liked})\n"
        f"<b>Latency</b> (last {LATENCY_WINDOW:,} photos): p50 {stats.p50:.2f} s, p95 {stats.p95:.2f} s\n"
        f"<b>Queue</b>: {svc.pool.queue_depth} waiting, {svc.pool.busy_workers}/{svc.pool.size} workers busy, "
        f"{svc.pool.restarts} restarts\n<b>Top matches</b>:\n{top or '  none yet'}"
    )
