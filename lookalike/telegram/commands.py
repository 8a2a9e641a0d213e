"""Commands and the messages that get a one-line answer: /start, /help, /settings (and its buttons), /stats,
stickers, videos, text."""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging

from telegram import CallbackQuery, Update
from telegram.constants import ChatType, ParseMode
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from lookalike.engine.matcher import MatchSex
from lookalike.logs import Throttled
from lookalike.telegram import keyboards
from lookalike.telegram.feedback import LATENCY_WINDOW, Stats
from lookalike.telegram.replies import Unreachable, deliver, lang_of, reply, service
from lookalike.telegram.service import Service
from lookalike.telegram.sqlite import StorageError
from lookalike.telegram.texts import text

log = logging.getLogger(__name__)
storage_errors = Throttled(log)


async def on_help(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/start, /help, unknown commands and plain text: what the bot does."""
    await reply(update, context, "help")


async def on_sticker(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await reply(update, context, "sticker")


async def on_video(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await reply(update, context, "video")


async def on_other(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await reply(update, context, "not_a_photo")


async def on_settings(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/settings: whom to be matched with. In a private chat the current choice is marked; in a group the buttons
    are everyone's (each press sets the presser's own choice) and nobody's choice is shown."""
    svc, message, lang = service(context), update.effective_message, lang_of(update)
    private = message.chat.type == ChatType.PRIVATE
    chosen = await svc.match_sex(update.effective_user.id) if private else None
    keyboard = keyboards.match_sex_keyboard(lang, chosen)
    body = text(lang, "settings")
    with contextlib.suppress(Unreachable):
        await deliver(lambda: message.reply_text(body, parse_mode=ParseMode.HTML, reply_markup=keyboard), svc)


async def choose_match_sex(query: CallbackQuery, svc: Service, lang: str, choice: MatchSex) -> None:
    """A /settings button: saves the presser's choice and says so in a notice only they see; in a private chat the
    mark moves to it. A store that cannot be written is said too ("couldn't save"), never left spinning."""
    try:
        await asyncio.to_thread(svc.preferences.set_match_sex, query.from_user.id, choice)
    except StorageError as exc:
        storage_errors.warning("preferences", "preference not saved", error=str(exc))
        await query.answer(text(lang, "match_not_saved"))
        return
    await query.answer(text(lang, "match_saved", choice=keyboards.match_sex_label(lang, choice)))
    if query.message is not None and query.message.chat.type == ChatType.PRIVATE:
        with contextlib.suppress(TelegramError):  # "message is not modified" when the choice was already marked
            await query.edit_message_reply_markup(keyboards.match_sex_keyboard(lang, choice))


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
