"""Inline button presses: more matches, 👍/👎, a face's card, and the /settings choices. Every press is answered
(Telegram shows a spinner until then); only the person who sent the photo may use its buttons, and only while its
result is remembered; a /settings button sets the choice of whoever pressed it."""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging

from telegram import CallbackQuery, Update
from telegram.constants import ChatAction, ParseMode
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from lookalike.engine.jobs import blend_animation
from lookalike.engine.pool import PoolBusy, PoolError
from lookalike.errors import NoLandmarks
from lookalike.logs import Throttled
from lookalike.telegram import keyboards
from lookalike.telegram.commands import choose_match_sex
from lookalike.telegram.replies import card_caption, deliver, lang_of, send_card, service
from lookalike.telegram.results import Result
from lookalike.telegram.service import JOB_TIMEOUT, Service
from lookalike.telegram.sqlite import StorageError
from lookalike.telegram.texts import text

log = logging.getLogger(__name__)
storage_errors = Throttled(log)


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    svc = service(context)
    lang = lang_of(update)
    press = keyboards.parse(query.data)
    result = svc.results.get(press.token) if press else None
    if (choice := keyboards.parse_match_sex(query.data)) is not None:
        await choose_match_sex(query, svc, lang, choice)
    elif press is None:
        await query.answer(text(lang, "invalid_button"))
    elif result is None or press.face >= len(result.faces):
        await query.answer(text(lang, "expired"))
    elif query.from_user.id != result.owner:
        await query.answer(text(lang, "not_yours"))
    elif press.action == keyboards.VOTE:
        await vote(query, svc, lang, press, result)
    elif press.action == keyboards.MORE:
        await more_matches(query, svc, lang, press, result)
    elif press.action == keyboards.BLEND:
        await blend(query, svc, lang, press, result)
    else:
        await face_card(query, svc, lang, press, result)


async def vote(query: CallbackQuery, svc: Service, lang: str, press: keyboards.Press, result: Result) -> None:
    """Saved in the feedback store; if the store is unusable (read-only, gone) the user is told, not left waiting."""
    best = result.faces[press.face].matches[0]
    try:
        await asyncio.to_thread(
            svc.feedback.vote,
            press.token,
            press.face,
            query.from_user.id,
            best.person,
            best.similarity,
            press.vote == "u",
        )
    except StorageError as exc:
        storage_errors.warning("vote", "vote not saved", error=str(exc))
        await query.answer(text(lang, "not_saved"))
        return
    await query.answer(text(lang, "thanks"))


async def more_matches(query: CallbackQuery, svc: Service, lang: str, press: keyboards.Press, result: Result) -> None:
    """The card's caption grows the next matches; the button goes away."""
    await query.answer()
    caption = card_caption(lang, svc.settings.link_template, result.faces[press.face].matches, more=True)
    with contextlib.suppress(TelegramError):  # "message is not modified" when pressed twice quickly
        await query.edit_message_caption(
            caption,
            parse_mode=ParseMode.HTML,
            reply_markup=keyboards.card_keyboard(lang, press.token, press.face, more=False),
        )


async def face_card(query: CallbackQuery, svc: Service, lang: str, press: keyboards.Press, result: Result) -> None:
    """Face N's card, for a photo with several faces."""
    face = result.faces[press.face]
    try:
        sent = await send_card(query.message, svc, lang, press.token, press.face, face.crop_jpeg, face.matches)
    except Exception:
        log.exception("face card failed", extra={"user": query.from_user.id})
        sent = None
    await query.answer(None if sent else text(lang, "failed"))


async def blend(query: CallbackQuery, svc: Service, lang: str, press: keyboards.Press, result: Result) -> None:
    """A 2 s animation of the user's face turning into the match's, rendered in a worker; counted like a photo."""
    if not svc.allowance.allow(query.from_user.id):
        await query.answer(text(lang, "slow_down"), show_alert=True)
        return
    if svc.pool.full:
        await query.answer(text(lang, "busy"), show_alert=True)
        return
    await query.answer()
    face, message = result.faces[press.face], query.message
    best = face.matches[0]
    with contextlib.suppress(TelegramError):
        await message.get_bot().send_chat_action(message.chat.id, ChatAction.UPLOAD_VIDEO)
    try:
        celebrity = await asyncio.to_thread(best.thumb.read_bytes)
        with svc.metrics.timed("blend"):
            video = await svc.pool.run(blend_animation, face.crop_jpeg, celebrity, timeout=JOB_TIMEOUT)
    except NoLandmarks as exc:
        whose = text(lang, "your_face" if exc.whose == NoLandmarks.USER else "celebrity_face")
        await deliver(lambda: message.reply_text(text(lang, "no_landmarks", whose=whose)), svc)
        return
    except PoolBusy:
        await deliver(lambda: message.reply_text(text(lang, "busy")), svc)
        return
    except (PoolError, OSError) as exc:
        log.warning("blend failed", extra={"user": query.from_user.id, "error": type(exc).__name__})
        await deliver(lambda: message.reply_text(text(lang, "failed")), svc)
        return
    caption = text(lang, "blend_caption", name=html.escape(best.name))
    await deliver(
        lambda: message.reply_animation(video, caption=caption, parse_mode=ParseMode.HTML, filename="blend.mp4"), svc
    )
