"""Update handlers: short async functions; the heavy work goes to the worker pool, the rest to threads."""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import PurePath
from urllib.parse import quote

from telegram import Document, Message, MessageEntity, PhotoSize, Update
from telegram.constants import ChatAction, ChatType, ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, TelegramError, TimedOut
from telegram.ext import ContextTypes

from lookalike.analysis import PhotoAnalysis, analyze_photo
from lookalike.catalog import IMAGE_SUFFIXES
from lookalike.errors import PhotoError
from lookalike.matcher import Match
from lookalike.pool import PoolBusy, PoolError
from lookalike.render import render_card
from lookalike.telegram import keyboards
from lookalike.telegram.feedback import LATENCY_WINDOW
from lookalike.telegram.results import FaceResult, Result
from lookalike.telegram.service import JOB_TIMEOUT, TELEGRAM_DOWNLOAD_LIMIT, Service
from lookalike.telegram.texts import language, percent, text

log = logging.getLogger("lookalike.bot")
MORE_MATCHES = 4
RETRY_BACKOFF = (0.5, 2.0)  # seconds before the 2nd and 3rd attempt of a reply


def service(context: ContextTypes.DEFAULT_TYPE) -> Service:
    return context.bot_data["service"]


def lang_of(update: Update) -> str:
    user = update.effective_user
    return language(user.language_code if user else None)


async def reply(update: Update, key: str, **values: object) -> None:
    """A text answer to the message that asked."""
    message = update.effective_message
    if message is not None:
        body = text(lang_of(update), key, **values)
        await deliver(lambda: message.reply_text(body, parse_mode=ParseMode.HTML))


async def deliver(send: Callable[[], Awaitable[Message]]) -> Message | None:
    """Send; retry transient Bot API failures (5xx, connection errors) twice with a short backoff.

    Returns None when the message could not be delivered: a user who blocked the bot (403), a request Telegram
    refused (400: retrying cannot help), or one that timed out (it may have arrived: retrying could answer
    twice) — each with one log line. RetryAfter (429) is handled below us, by the rate limiter.
    """
    for attempt in range(len(RETRY_BACKOFF) + 1):
        try:
            return await send()
        except Forbidden as exc:
            log.info("user unreachable", extra={"reason": str(exc)})
            return None
        except BadRequest as exc:
            log.warning("reply refused", extra={"error": str(exc)})
            return None
        except TimedOut:
            log.warning("reply timed out, dropped")
            return None
        except NetworkError as exc:
            if attempt == len(RETRY_BACKOFF):
                log.warning("reply failed, dropped", extra={"error": str(exc)})
                return None
            await asyncio.sleep(RETRY_BACKOFF[attempt])
    return None


# --- commands and non-photo messages ------------------------------------------------------------------------


async def on_help(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await reply(update, "help")


async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await reply(update, "help")


async def on_sticker(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await reply(update, "sticker")


async def on_video(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await reply(update, "video")


async def on_other(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await reply(update, "not_a_photo")


async def on_stats(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Operators only (LOOKALIKE_ADMIN_IDS): traffic, outcomes, feedback and the most matched celebrities."""
    svc = service(context)
    user = update.effective_user
    if user is None or user.id not in svc.settings.admins:
        await reply(update, "admins_only")
        return
    stats = await asyncio.to_thread(svc.feedback.stats)
    outcomes = ", ".join(f"{k} {v}" for k, v in sorted(stats.outcomes.items())) or "none"
    top = "\n".join(
        f"  {html.escape(svc.matcher.store.persons[p].name if p in svc.matcher.store.persons else p)}: {n}"
        for p, n in stats.top_persons
    )
    votes = stats.up + stats.down
    liked = f"{100 * stats.up / votes:.0f}% 👍" if votes else "no votes yet"
    body = (
        f"<b>Requests</b>: {stats.requests} ({outcomes})\n<b>Faces found</b>: {stats.faces}\n"
        f"<b>Feedback</b>: {stats.up} 👍 / {stats.down} 👎 ({liked})\n"
        f"<b>Latency</b> (last {LATENCY_WINDOW:,} photos): p50 {stats.p50:.2f} s, p95 {stats.p95:.2f} s\n"
        f"<b>Queue</b>: {svc.pool.queue_depth} waiting, {svc.pool.busy_workers}/{svc.pool.size} workers busy, "
        f"{svc.pool.restarts} restarts\n<b>Top matches</b>:\n{top or '  none yet'}"
    )
    await deliver(lambda: update.effective_message.reply_text(body, parse_mode=ParseMode.HTML))


# --- photos ---------------------------------------------------------------------------------------------------


def is_image_document(document: Document | None) -> bool:
    """Images sent as files: by MIME type, or by extension when the client sent a generic type."""
    if document is None:
        return False
    mime = (document.mime_type or "").lower()
    suffix = PurePath(document.file_name or "").suffix.lower()
    return mime.startswith("image/") or (suffix in IMAGE_SUFFIXES and mime in ("", "application/octet-stream"))


def addressed_to_bot(message: Message, bot_id: int, username: str) -> bool:
    """In groups we answer a photo only if its caption mentions us or it replies to one of our messages."""
    replied = message.reply_to_message
    if replied is not None and replied.from_user is not None and replied.from_user.id == bot_id:
        return True
    mentions = message.parse_caption_entities([MessageEntity.MENTION]).values()
    return any(m.lower() == f"@{username.lower()}" for m in mentions)


async def on_photo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A photo, or an image sent as a file: in private chats always, in groups when addressed to us."""
    message = update.effective_message
    if update.effective_user is None:  # channel posts: nobody to answer
        return
    if message.chat.type != ChatType.PRIVATE and not addressed_to_bot(message, context.bot.id, context.bot.username):
        return
    await answer_photo(update, context, message)


async def on_document(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    if is_image_document(update.effective_message.document):
        await on_photo(update, context)
    elif update.effective_chat.type == ChatType.PRIVATE:
        await reply(update, "not_a_photo")


async def on_lookalike(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """``/lookalike`` in reply to a photo (groups' way of asking); otherwise explain how to use it."""
    target = update.effective_message.reply_to_message
    if target is not None and (target.photo or is_image_document(target.document)):
        await answer_photo(update, context, target)
    else:
        await reply(update, "reply_to_photo")


def _largest(message: Message) -> PhotoSize | Document:
    if message.photo:
        return max(message.photo, key=lambda p: (p.width * p.height, p.file_size or 0))
    return message.document


async def answer_photo(update: Update, context: ContextTypes.DEFAULT_TYPE, photo_message: Message) -> None:
    """Download (in memory), analyse in a worker, match, render, reply — and record how it went."""
    svc = service(context)
    user = update.effective_user
    started = time.perf_counter()
    outcome, analysis, matches = "error", None, []
    try:
        outcome, analysis, matches = await _analyse(update, context, svc, _largest(photo_message))
        if analysis is not None:
            stage = time.perf_counter()
            if await _send_result(update, svc, analysis, matches) is None:
                outcome = "send_failed"
            svc.metrics.stage.labels("send").observe(time.perf_counter() - stage)
    except Exception:
        outcome = "error"
        log.exception("photo failed", extra={"user": user.id})
        await reply(update, "failed")  # never silence: the user hears something went wrong
    finally:
        seconds = time.perf_counter() - started
        svc.metrics.requests.labels(outcome).inc()
        svc.metrics.stage.labels("total").observe(seconds)
        top = matches[0][0] if matches and matches[0] else None
        log.info(
            "photo",
            extra={
                "user": user.id,
                "outcome": outcome,
                "faces": len(matches),
                "seconds": round(seconds, 3),
                "match": top.person if top else None,
            },
        )
        await asyncio.to_thread(
            svc.feedback.record,
            user.id,
            outcome,
            len(matches),
            top.person if top else None,
            top.similarity if top else None,
            seconds,
        )


async def _analyse(
    update: Update, context: ContextTypes.DEFAULT_TYPE, svc: Service, file: PhotoSize | Document
) -> tuple[str, PhotoAnalysis | None, list[list[Match]]]:
    """The outcome label, and on success the analysis and each face's matches. Users get told about failures."""
    if file.file_size and file.file_size > TELEGRAM_DOWNLOAD_LIMIT:
        await reply(update, "file_too_big")
        return "file_too_big", None, []
    if not svc.allowance.allow(update.effective_user.id):
        await reply(update, "slow_down")
        return "rate_limited", None, []
    if svc.pool.full:  # say so now rather than after downloading up to 20 MB
        await reply(update, "busy")
        return "busy", None, []
    chat = update.effective_chat
    with contextlib.suppress(TelegramError):
        await context.bot.send_chat_action(chat.id, ChatAction.UPLOAD_PHOTO)
    stage = time.perf_counter()
    try:
        data = await (await file.get_file()).download_as_bytearray()
    except TelegramError as exc:
        too_big = isinstance(exc, BadRequest) and "too big" in str(exc).lower()
        log.warning("download failed", extra={"user": update.effective_user.id, "error": type(exc).__name__})
        await reply(update, "file_too_big" if too_big else "failed")
        return ("file_too_big" if too_big else "download_failed"), None, []
    svc.metrics.stage.labels("download").observe(time.perf_counter() - stage)
    stage = time.perf_counter()
    try:
        analysis = await svc.pool.run(analyze_photo, data, svc.detect, svc.limits, True, timeout=JOB_TIMEOUT)
    except PhotoError as exc:
        await reply(update, exc.code)
        return exc.code, None, []
    except PoolBusy:
        await reply(update, "busy")
        return "busy", None, []
    except PoolError as exc:
        log.warning("worker failed", extra={"user": update.effective_user.id, "error": type(exc).__name__})
        await reply(update, "failed")
        return "worker_failed", None, []
    finally:
        del data
    svc.metrics.stage.labels("analyze").observe(time.perf_counter() - stage)
    svc.metrics.faces.observe(len(analysis.faces))
    stage = time.perf_counter()
    matches = [svc.matcher.match(face.descriptor, svc.settings.top_k) for face in analysis.faces]
    svc.metrics.stage.labels("match").observe(time.perf_counter() - stage)
    return "matched", analysis, matches


async def _send_result(
    update: Update, svc: Service, analysis: PhotoAnalysis, matches: list[list[Match]]
) -> Message | None:
    lang = lang_of(update)
    message = update.effective_message
    several = len(analysis.faces) > 1
    faces = tuple(FaceResult(tuple(m), face.crop_jpeg if several else b"") for face, m in zip(analysis.faces, matches))
    token = svc.results.put(update.effective_user.id, message.chat_id, faces)
    if not several:
        return await send_card(message, svc, lang, token, 0, analysis.faces[0].crop_jpeg, matches[0])
    lines = [text(lang, "faces_header", count=analysis.detected)]
    lines += [
        text(lang, "face_line", n=n, name=html.escape(m[0].name), similarity=percent(m[0].similarity))
        for n, m in enumerate(matches, 1)
    ]
    if analysis.detected > len(faces):
        lines.append(text(lang, "faces_limit", limit=len(faces)))
    lines.append(text(lang, "faces_more"))
    return await deliver(
        lambda: message.reply_photo(
            analysis.annotated_jpeg,
            caption="\n".join(lines),
            parse_mode=ParseMode.HTML,
            reply_markup=keyboards.faces_keyboard(token, len(faces)),
        )
    )


async def send_card(
    message: Message, svc: Service, lang: str, token: str, face: int, crop_jpeg: bytes, matches: Sequence[Match]
) -> Message | None:
    """The card (user's face beside the best match) with its caption and buttons, as a reply to ``message``."""
    best = matches[0]
    stage = time.perf_counter()
    card = await asyncio.to_thread(_render, crop_jpeg, best)
    svc.metrics.stage.labels("render").observe(time.perf_counter() - stage)
    caption = card_caption(lang, svc.settings.link_template, matches)
    return await deliver(
        lambda: message.reply_photo(
            card,
            caption=caption,
            parse_mode=ParseMode.HTML,
            reply_markup=keyboards.card_keyboard(lang, token, face, more=len(matches) > 1),
        )
    )


def _render(crop_jpeg: bytes, best: Match) -> bytes:
    return render_card(crop_jpeg, best.thumb.read_bytes(), best.name, best.similarity)


def card_caption(lang: str, link_template: str, matches: Sequence[Match], more: bool = False) -> str:
    best = matches[0]
    lines = [text(lang, "you_look_like", name=html.escape(best.name), similarity=percent(best.similarity))]
    if best.alias and link_template:
        url = link_template.format(alias=quote(best.alias), name=quote(best.name))
        lines.append(f'<a href="{html.escape(url, quote=True)}">{html.escape(best.name)} ↗</a>')
    if more:
        lines.append("")
        lines.append(text(lang, "more_header"))
        lines += [
            text(lang, "face_line", n=n, name=html.escape(m.name), similarity=percent(m.similarity))
            for n, m in enumerate(matches[1 : 1 + MORE_MATCHES], 2)
        ]
    return "\n".join(lines)


# --- buttons --------------------------------------------------------------------------------------------------


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Every press is answered (Telegram shows a spinner until then); only the photo's sender may use its buttons."""
    query = update.callback_query
    svc = service(context)
    lang = lang_of(update)
    press = keyboards.parse(query.data)
    result = svc.results.get(press.token) if press else None
    if press is None:
        await query.answer(text(lang, "invalid_button"))
    elif result is None or press.face >= len(result.faces):
        await query.answer(text(lang, "expired"))
    elif query.from_user.id != result.owner:
        await query.answer(text(lang, "not_yours"))
    elif press.action == keyboards.VOTE:
        await _vote(query, svc, lang, press, result)
    elif press.action == keyboards.MORE:
        await query.answer()
        matches = result.faces[press.face].matches
        caption = card_caption(lang, svc.settings.link_template, matches, more=True)
        with contextlib.suppress(TelegramError):  # "message is not modified" when pressed twice quickly
            await query.edit_message_caption(
                caption,
                parse_mode=ParseMode.HTML,
                reply_markup=keyboards.card_keyboard(lang, press.token, press.face, more=False),
            )
    elif not result.faces[press.face].crop_jpeg:  # a face card exists only for photos with several faces
        await query.answer(text(lang, "invalid_button"))
    else:
        face = result.faces[press.face]
        try:
            sent = await send_card(query.message, svc, lang, press.token, press.face, face.crop_jpeg, face.matches)
        except Exception:
            log.exception("face card failed", extra={"user": query.from_user.id})
            sent = None
        await query.answer(None if sent else text(lang, "failed"))


async def _vote(query, svc: Service, lang: str, press: keyboards.Press, result: Result) -> None:
    best = result.faces[press.face].matches[0]
    await asyncio.to_thread(
        svc.feedback.vote, press.token, press.face, query.from_user.id, best.person, best.similarity, press.vote == "u"
    )
    await query.answer(text(lang, "thanks"))
