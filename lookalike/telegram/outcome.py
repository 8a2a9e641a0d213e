"""How one photo request ended: one name per ending, shared by the metrics label and the SQLite request log."""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    MATCHED = "matched"  # the card (or the numbered-faces photo) went out
    NO_FACE = "no_face"
    NOT_AN_IMAGE = "not_an_image"
    TOO_LARGE = "too_large"  # decoded size or pixel count over the limits
    FILE_TOO_BIG = "file_too_big"  # over the 20 MB Telegram lets bots download
    RATE_LIMITED = "rate_limited"  # the user's per-minute allowance is used up
    BUSY = "busy"  # the worker queue is full
    DOWNLOAD_FAILED = "download_failed"
    WORKER_FAILED = "worker_failed"  # the worker died or hung on this photo
    SEND_FAILED = "send_failed"  # the answer could not be delivered
    ERROR = "error"  # a bug: logged with its traceback, the user is told something went wrong
