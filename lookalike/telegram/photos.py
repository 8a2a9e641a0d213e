"""A photo's way through the bot: admitted (size, allowance, queue) → downloaded into memory → analysed in a
worker → matched → answered with a card (one face) or the numbered faces (several); every ending recorded."""

from __future__ import annotations

import asyncio
import gc
import html
import logging
import time
from pathlib import PurePath

from telegram import Document, Message, MessageEntity, PhotoSize, Update
from telegram.constants import ChatType, ParseMode
from telegram.error import BadRequest, TelegramError
from telegram.ext import ContextTypes

from lookalike.engine.images import IMAGE_SUFFIXES
from lookalike.engine.lookup import FaceMatches
from lookalike.engine.photo import PhotoAnalysis
from lookalike.engine.pool import PoolBusy, PoolError
from lookalike.errors import PhotoError
from lookalike.logs import Throttled
from lookalike.telegram import keyboards
from lookalike.telegram.outcome import Outcome
from lookalike.telegram.replies import Unreachable, deliver, lang_of, reply, send_card, service, with_retries
from lookalike.telegram.results import FaceResult
from lookalike.telegram.service import JOB_TIMEOUT, TELEGRAM_DOWNLOAD_LIMIT, Service
from lookalike.telegram.sqlite import StorageError
from lookalike.telegram.texts import percent, text
from lookalike.telegram.waiting import Waiting

log = logging.getLogger(__name__)
storage_errors = Throttled(log)

LARGE_PHOTO = 4 * 2**20  # bytes: Telegram's own photo sizes stay well under this; big files are the exception

# What the user is told for each ending that is not a card (the rest have a text of the same name).
REPLY_KEY = {Outcome.RATE_LIMITED: "slow_down", Outcome.DOWNLOAD_FAILED: "failed", Outcome.WORKER_FAILED: "failed"}


class Refused(Exception):
    """The photo gets a short text instead of a card; ``outcome`` says why."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.value)
        self.outcome = outcome


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
        await reply(update, context, "not_a_photo")


async def on_lookalike(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """``/lookalike`` in reply to a photo (groups' way of asking); otherwise explain how to use it."""
    target = update.effective_message.reply_to_message
    if target is not None and (target.photo or is_image_document(target.document)):
        await answer_photo(update, context, target)
    else:
        await reply(update, context, "reply_to_photo")


async def answer_photo(update: Update, context: ContextTypes.DEFAULT_TYPE, photo_message: Message) -> None:
    """Answer the photo in ``photo_message`` — always with something — and record how it ended. Once the photo is
    admitted the user sees the bot at work until the answer is out, however long an outage makes it (``Waiting``)."""
    svc = service(context)
    started = time.perf_counter()
    outcome, faces, file = Outcome.ERROR, [], largest(photo_message)
    try:
        async with Waiting(update.effective_message, lang_of(update)) as waiting:
            outcome, faces = await respond(update, context, file, waiting)
    finally:
        await record(svc, update.effective_user.id, outcome, faces, time.perf_counter() - started)
        if (file.file_size or 0) >= LARGE_PHOTO and svc.memory.held == 0:
            # A large photo's bytes can hang in exception-traceback cycles (a refusal raised from the worker's
            # error) until a full collection, which may be minutes away: measured 417 MB instead of 133 MB
            # 10 s after a burst of 19 MB files. Collect once the last photo in hand is done.
            gc.collect()


async def respond(
    update: Update, context: ContextTypes.DEFAULT_TYPE, file: PhotoSize | Document, waiting: Waiting
) -> tuple[Outcome, list[FaceMatches]]:
    """The answer: a card, a short text saying why not, or "something went wrong" — never silence."""
    svc = service(context)
    faces: list[FaceMatches] = []
    try:
        analysis = await analyze(update, svc, file, waiting)
        match_sex = await svc.match_sex(update.effective_user.id)  # the asker's /settings choice
        with svc.metrics.timed("match"):
            faces = svc.lookup.matches(analysis, match_sex=match_sex)
        with svc.metrics.timed("send"):
            sent = await send_result(update, svc, analysis, faces)
        return (Outcome.MATCHED if sent is not None else Outcome.SEND_FAILED), faces
    except Refused as refused:
        await reply(update, context, REPLY_KEY.get(refused.outcome, refused.outcome.value))
        return refused.outcome, faces
    except Unreachable:
        return Outcome.SEND_FAILED, faces
    except Exception:
        log.exception("photo failed", extra={"user": update.effective_user.id})
        await reply(update, context, "failed")  # never silence: the user hears something went wrong
        return Outcome.ERROR, faces


def largest(message: Message) -> PhotoSize | Document:
    """The biggest size Telegram has of the photo (or the image file itself)."""
    if message.photo:
        return max(message.photo, key=lambda p: (p.width * p.height, p.file_size or 0))
    return message.document


async def analyze(update: Update, svc: Service, file: PhotoSize | Document, waiting: Waiting) -> PhotoAnalysis:
    """Admit, download and analyse the photo in a worker. Raises Refused for every ending but a match.

    Admission comes first and costs nothing: the user's allowance, a free place in the worker queue, and room in
    the photo memory budget for this file — only then is anything downloaded, and ``waiting`` started (the worker
    queue and analysis are ``waiting.own_work``: a busy bot is not a slow Telegram).
    """
    size = file.file_size or TELEGRAM_DOWNLOAD_LIMIT
    if size > TELEGRAM_DOWNLOAD_LIMIT:
        raise Refused(Outcome.FILE_TOO_BIG)
    if not svc.allowance.allow(update.effective_user.id):
        raise Refused(Outcome.RATE_LIMITED)
    if svc.pool.full or not svc.memory.take(size):
        raise Refused(Outcome.BUSY)
    try:
        waiting.start()
        with svc.metrics.timed("download"):
            data = await download(update, svc, file)
        func, args = svc.lookup.job(data, annotate=True)
        del data  # the job holds the bytes now; they go with it
        try:
            with svc.metrics.timed("analyze"), waiting.own_work():
                analysis = await svc.pool.run(func, *args, timeout=JOB_TIMEOUT)
        except PhotoError as exc:
            raise Refused(Outcome(exc.code)) from None
        except PoolBusy:
            raise Refused(Outcome.BUSY) from None
        except PoolError as exc:
            log.warning("worker failed", extra={"user": update.effective_user.id, "error": type(exc).__name__})
            raise Refused(Outcome.WORKER_FAILED) from None
        finally:
            del args
    finally:
        svc.memory.give(size)
    svc.metrics.faces.observe(len(analysis.faces))
    return analysis


async def download(update: Update, svc: Service, file: PhotoSize | Document) -> bytearray:
    """The file's bytes, in memory only, and only from the Bot API's file URL (retried through an outage)."""
    try:
        tg_file = await with_retries(file.get_file, svc)
        if not (tg_file.file_path or "").startswith(svc.settings.base_file_url):
            # a server answer naming a local path would make PTB read that file from our disk: never
            log.warning("refused a file path outside the Bot API file URL", extra={"user": update.effective_user.id})
            raise Refused(Outcome.DOWNLOAD_FAILED)
        return await with_retries(tg_file.download_as_bytearray, svc)
    except TelegramError as exc:
        too_big = isinstance(exc, BadRequest) and "too big" in str(exc).lower()
        log.warning("download failed", extra={"user": update.effective_user.id, "error": type(exc).__name__})
        raise Refused(Outcome.FILE_TOO_BIG if too_big else Outcome.DOWNLOAD_FAILED) from None


async def send_result(
    update: Update, svc: Service, analysis: PhotoAnalysis, faces: list[FaceMatches]
) -> Message | None:
    """One face: its card. Several: the photo with numbered boxes, a line per face and a button per face."""
    lang = lang_of(update)
    message = update.effective_message
    several = len(faces) > 1
    kept = tuple(FaceResult(tuple(f.matches), f.face.crop_jpeg) for f in faces)
    token = svc.results.put(update.effective_user.id, kept)
    if not several:
        return await send_card(message, svc, lang, token, 0, faces[0].face.crop_jpeg, faces[0].matches)
    lines = [text(lang, "faces_header", count=analysis.detected)]
    lines += [
        text(lang, "face_line", n=n, name=html.escape(f.matches[0].name), similarity=percent(f.matches[0].similarity))
        for n, f in enumerate(faces, 1)
    ]
    if analysis.detected > len(faces):
        lines.append(text(lang, "faces_limit", limit=len(faces)))
    lines.append(text(lang, "faces_more"))
    caption, keyboard = "\n".join(lines), keyboards.faces_keyboard(token, len(faces))
    sent = await deliver(
        lambda: message.reply_photo(
            analysis.annotated_jpeg, caption=caption, parse_mode=ParseMode.HTML, reply_markup=keyboard
        ),
        svc,
    )
    if sent is None:  # the picture was refused: the list and the buttons still work without it
        sent = await deliver(lambda: message.reply_text(caption, parse_mode=ParseMode.HTML, reply_markup=keyboard), svc)
    return sent


async def record(svc: Service, user_id: int, outcome: Outcome, faces: list[FaceMatches], seconds: float) -> None:
    """One metrics sample, one log line and one SQLite row per photo. The log line names the user but not the match,
    the row the match but not the user: together they would show the sex the bot took the user for."""
    svc.metrics.requests.labels(outcome.value).inc()
    svc.metrics.stage.labels("total").observe(seconds)
    top = faces[0].matches[0] if faces else None
    log.info(
        "photo", extra={"user": user_id, "outcome": outcome.value, "faces": len(faces), "seconds": round(seconds, 3)}
    )
    try:
        await asyncio.to_thread(
            svc.feedback.record,
            outcome.value,
            len(faces),
            top.person if top else None,
            top.similarity if top else None,
            seconds,
        )
    except StorageError as exc:  # the answer went out; only the statistics miss a row
        storage_errors.warning("record", "request not recorded", error=str(exc))
