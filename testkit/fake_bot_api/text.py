"""Telegram's text rules: entities it adds to what users write, the HTML parse_mode, and length limits."""

from __future__ import annotations

import html
import re

from testkit.fake_bot_api.model import JSON, bad

_LIMITS = {"text": 4096, "caption": 1024}  # UTF-16 units after parsing
_USER_ENTITIES = {
    "bot_command": re.compile(r"(?<!\S)/\w{1,64}(?:@\w{3,32})?(?![\w@/])"),
    "mention": re.compile(r"(?<![\w@/])@[A-Za-z]\w{3,31}(?![\w@])"),
}
_HTML_RE = re.compile(r"<(/?)([A-Za-z][\w-]*)([^<>]*)>|&(?:#\d{1,7}|#[xX][0-9a-fA-F]{1,6}|lt|gt|amp|quot);|<")
_HTML_TYPES = dict(
    pair.split(":")
    for pair in "b:bold strong:bold i:italic em:italic u:underline ins:underline s:strikethrough strike:strikethrough "
    "del:strikethrough span:spoiler tg-spoiler:spoiler a:text_link code:code pre:pre blockquote:blockquote "
    "tg-emoji:custom_emoji".split()
)


def utf16(text: str) -> int:
    """Telegram counts entity offsets and length limits in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def user_entities(text: str) -> list[JSON]:
    """The entities Telegram adds to what users write: PTB's CommandHandler and mention checks rely on them."""
    found = sorted((m.start(), m.end(), kind) for kind, regex in _USER_ENTITIES.items() for m in regex.finditer(text))
    return [{"type": kind, "offset": utf16(text[:a]), "length": utf16(text[a:b])} for a, b, kind in found]


def parse_html(src: str) -> tuple[str, list[JSON]]:
    """Telegram's HTML parse_mode: (plain text, entities); 400 "can't parse entities" for markup Telegram refuses."""
    text, entities, cursor = "", [], 0
    stack: list[tuple[str, int, str]] = []  # open tags: (tag, UTF-16 start, attributes)
    for m in _HTML_RE.finditer(src):
        text += src[cursor : m.start()]
        cursor = m.end()
        where = f"at byte offset {len(src[: m.start()].encode())}"
        tag = (m[2] or "").lower()
        if m[0].startswith("&"):
            text += html.unescape(m[0])
        elif m[0] == "<" or (not m[1] and (tag not in _HTML_TYPES or (tag == "span" and "tg-spoiler" not in m[3]))):
            raise bad(f'can\'t parse entities: Unsupported start tag "{tag}" {where}')
        elif not m[1]:
            stack.append((tag, utf16(text), m[3]))
        elif not stack or stack[-1][0] != tag:
            raise bad(f'can\'t parse entities: Unmatched end tag "{tag}" {where}')
        elif (length := utf16(text) - stack[-1][1]) > 0:
            _, start, attributes = stack.pop()
            entities.append({"type": _HTML_TYPES[tag], "offset": start, "length": length})
            if tag == "a":
                href = re.search(r"""href\s*=\s*["']([^"']*)""", attributes)
                entities[-1]["url"] = html.unescape(href[1]) if href else ""
        else:
            stack.pop()
    if stack:
        raise bad(f"can't parse entities: Can't find end tag corresponding to start tag \"{stack[-1][0]}\"")
    return text + src[cursor:], sorted(entities, key=lambda e: (e["offset"], -e["length"]))


def formatted(params: JSON, key: str) -> JSON:
    """The ``text`` or ``caption`` message fields (HTML parsed) with their entities; None means absent."""
    entities_key = "entities" if key == "text" else "caption_entities"
    mode = str(params.get("parse_mode") or "").lower()
    if mode not in ("", "html"):
        raise bad(f"unsupported parse_mode {mode!r}: the fake Bot API only speaks HTML")
    raw = params.get(key) or ""
    text, entities = parse_html(raw) if mode else (raw, params.get(entities_key))
    if key == "text" and not text.strip():
        raise bad("message text is empty")
    if utf16(text) > _LIMITS[key]:
        raise bad(f"message {'' if key == 'text' else 'caption '}is too long")
    return {key: text or None, entities_key: entities or None}
