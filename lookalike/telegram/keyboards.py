"""Inline buttons and their callback data, parsed strictly: ``<action>:<token>:<face>[:<vote>]`` under results,
``s:<match_sex>`` under /settings."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import cast

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from lookalike.engine.matcher import MATCH_SEX_CHOICES, MatchSex
from lookalike.telegram.texts import text

MORE, VOTE, CARD, BLEND = "m", "v", "c", "b"
_PATTERN = re.compile(r"(?P<action>[mvcb]):(?P<token>[A-Za-z0-9_-]{8}):(?P<face>\d{1,2})(?::(?P<vote>[ud]))?", re.ASCII)
MATCH_SEX = "s"
_MATCH_SEX_PATTERN = re.compile(rf"{MATCH_SEX}:(?P<choice>{'|'.join(MATCH_SEX_CHOICES)})")
CHOSEN = "✅ "


@dataclass(frozen=True)
class Press:
    action: str
    token: str
    face: int
    vote: str | None


def parse(data: str | None) -> Press | None:
    """The button pressed, or None for anything we did not make (old formats, forged data)."""
    found = _PATTERN.fullmatch(data or "")  # not match(): "$" would let a trailing newline through
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


def parse_match_sex(data: str | None) -> MatchSex | None:
    """The /settings choice pressed, or None for any other data (result buttons, forged data)."""
    found = _MATCH_SEX_PATTERN.fullmatch(data or "")
    return cast(MatchSex, found["choice"]) if found else None


def match_sex_label(lang: str, choice: MatchSex) -> str:
    return text(lang, f"match_{choice}")


def match_sex_keyboard(lang: str, chosen: MatchSex | None) -> InlineKeyboardMarkup:
    """Under /settings: "like my photo" on its own row, then women · men · anyone; ``chosen`` marked (None in groups,
    where the message is everyone's and a mark would tell them somebody's choice)."""

    def button(choice: MatchSex) -> InlineKeyboardButton:
        mark = CHOSEN if choice == chosen else ""
        return InlineKeyboardButton(mark + match_sex_label(lang, choice), callback_data=f"{MATCH_SEX}:{choice}")

    auto, *others = MATCH_SEX_CHOICES
    return InlineKeyboardMarkup([[button(auto)], [button(choice) for choice in others]])
