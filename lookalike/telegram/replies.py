"""How the bot answers: texts in the user's language, delivery with retries, and the match card with its caption."""

from __future__ import annotations

import asyncio
import html
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar
from urllib.parse import quote

from telegram import Message, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError
from telegram.ext import ContextTypes

from lookalike.engine.matcher import Match
from lookalike.engine.render import render_card
from lookalike.logs import Throttled
from lookalike.telegram import keyboards
from lookalike.telegram.service import Service
from lookalike.telegram.texts import language, likeness, percent, text

log = logging.getLogger(__name__)
MORE_MATCHES = 4
RETRY_FIRST_PAUSE, RETRY_MAX_PAUSE = 0.5, 15.0  # s between attempts while the Bot API is unreachable
T = TypeVar("T")
retrying = Throttled(log)


def service(context: ContextTypes.DEFAULT_TYPE) -> Service:
    return context.bot_data["service"]


def lang_of(update: Update) -> str:
    user = update.effective_user
    return language(user.language_code if user else None)


class Unreachable(Exception):
    """The user blocked the bot or left the chat (403): nothing more can be said to them."""


async def reply(update: Update, context: ContextTypes.DEFAULT_TYPE, key: str, **values: object) -> Message | None:
    """A text answer to the message that asked (None if it could not be delivered)."""
    message = update.effective_message
    if message is None:
        return None
    body = text(lang_of(update), key, **values)
    try:
        return await deliver(lambda: message.reply_text(body, parse_mode=ParseMode.HTML), service(context))
    except Unreachable:
        return None


async def with_retries(call: Callable[[], Awaitable[T]], svc: Service) -> T:
    """``call()``, retried with growing pauses while the Bot API is unreachable (connection errors, 5xx,
    time-outs) for up to the bot's ``reply_deadline``: an outage delays answers instead of dropping them.
    Other errors, and the last NetworkError once the deadline has passed, are raised."""
    give_up = time.monotonic() + svc.settings.reply_deadline
    pause = RETRY_FIRST_PAUSE
    while True:
        try:
            return await call()
        except NetworkError as exc:  # TimedOut and 5xx answers are NetworkErrors; BadRequest and Forbidden are not
            if isinstance(exc, (BadRequest, Forbidden)) or time.monotonic() + pause > give_up:
                raise
            svc.metrics.telegram_errors.labels(type(exc).__name__).inc()
            retrying.warning("retry", "Bot API unreachable, retrying", error=type(exc).__name__)
            await asyncio.sleep(pause)
            pause = min(RETRY_MAX_PAUSE, pause * 2)


async def deliver(send: Callable[[], Awaitable[T]], svc: Service) -> T | None:
    """Send with retries (``with_retries``). Returns None for what retrying cannot fix — a request Telegram
    refuses (400), or the deadline passed — with one log line; raises Unreachable for a user who blocked the bot.
    RetryAfter (429) is handled below us, by the rate limiter. A time-out is retried too: the answer may then
    arrive twice, which beats never."""
    try:
        return await with_retries(send, svc)
    except Forbidden as exc:
        log.info("user unreachable", extra={"reason": str(exc)})
        raise Unreachable(str(exc)) from None
    except BadRequest as exc:
        log.warning("reply refused", extra={"error": str(exc)})
    except NetworkError as exc:
        log.warning("reply dropped after retrying", extra={"error": str(exc), "seconds": svc.settings.reply_deadline})
    return None


def card_caption(lang: str, link_template: str, matches: Sequence[Match], more: bool = False) -> str:
    """Name, role and % of the best match, its link, and with ``more`` the next matches."""
    best = matches[0]
    lines = [text(lang, likeness(best.similarity), name=html.escape(best.name), similarity=percent(best.similarity))]
    if best.role:
        lines.append(f"<i>{html.escape(best.role)}</i>")
    made = link_template.format(alias=quote(best.alias), name=quote(best.name)) if best.alias and link_template else ""
    if url := best.url or made:
        lines.append(f'<a href="{html.escape(url, quote=True)}">{html.escape(best.name)} ↗</a>')
    if more:
        lines.append("")
        lines.append(text(lang, "more_header"))
        lines += [
            text(lang, "face_line", n=n, name=html.escape(m.name), similarity=percent(m.similarity))
            for n, m in enumerate(matches[1 : 1 + MORE_MATCHES], 2)
        ]
    return "\n".join(lines)


async def send_card(
    message: Message, svc: Service, lang: str, token: str, face: int, crop_jpeg: bytes, matches: Sequence[Match]
) -> Message | None:
    """The card (user's face beside the best match) with its caption and buttons, as a reply to ``message``.

    If Telegram will not take the picture (a 400, or 5xx until the deadline), the same result goes out as text:
    the user always hears who they look like. Raises Unreachable for a user who blocked the bot.
    """
    best = matches[0]
    with svc.metrics.timed("render"):
        card = await asyncio.to_thread(_render, crop_jpeg, best)
    caption = card_caption(lang, svc.settings.link_template, matches)
    keyboard = keyboards.card_keyboard(lang, token, face, more=len(matches) > 1)
    sent = await deliver(
        lambda: message.reply_photo(card, caption=caption, parse_mode=ParseMode.HTML, reply_markup=keyboard), svc
    )
    if sent is None:
        fallback = card_caption(lang, svc.settings.link_template, matches, more=True)
        votes = keyboards.card_keyboard(lang, token, face, more=False)
        sent = await deliver(lambda: message.reply_text(fallback, parse_mode=ParseMode.HTML, reply_markup=votes), svc)
    return sent


def _render(crop_jpeg: bytes, best: Match) -> bytes:
    return render_card(crop_jpeg, best.thumb.read_bytes(), best.name, best.similarity, best.role)
