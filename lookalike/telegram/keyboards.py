"""Inline buttons and their callback data: ``<action>:<token>:<face>[:<vote>]``, parsed strictly."""

from __future__ import annotations

import re
from dataclasses import dataclass

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from lookalike.telegram.texts import text

MORE, VOTE, CARD, BLEND = "m", "v", "c", "b"
_PATTERN = re.compile(r"^(?P<action>[mvcb]):(?P<token>[A-Za-z0-9_-]{8}):(?P<face>\d{1,2})(?::(?P<vote>[ud]))?$")


@dataclass(frozen=True)
class Press:
    action: str
    token: str
    face: int
    vote: str | None


def parse(data: str | None) -> Press | None:
    """The button pressed, or None for anything we did not make (old formats, forged data)."""
    found = _PATTERN.match(data or "")
    if not found or (found["action"] == VOTE) != (found["vote"] is not None):
        return None
    return Press(found["action"], found["token"], int(found["face"]), found["vote"])


def card_keyboard(lang: str, token: str, face: int, more: bool = True) -> InlineKeyboardMarkup:
    """Under a card: "More matches" (until pressed) and "Blend", then 👍 / 👎."""
    first = [InlineKeyboardButton(text(lang, "blend_button"), callback_data=f"{BLEND}:{token}:{face}")]
    if more:
        first.insert(0, InlineKeyboardButton(text(lang, "more_button"), callback_data=f"{MORE}:{token}:{face}"))
    rows = [first]
    rows.append(
        [
            InlineKeyboardButton("👍", callback_data=f"{VOTE}:{token}:{face}:u"),
            InlineKeyboardButton("👎", callback_data=f"{VOTE}:{token}:{face}:d"),
        ]
    )
    return InlineKeyboardMarkup(rows)


def faces_keyboard(token: str, count: int) -> InlineKeyboardMarkup:
    """Under the numbered-faces photo: one button per face, opening that face's card."""
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(str(n + 1), callback_data=f"{CARD}:{token}:{n}") for n in range(count)]]
    )
