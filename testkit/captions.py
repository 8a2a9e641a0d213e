"""Reading the bot's card captions as a user reads them: who the match is and its %, whatever the band's words."""

from __future__ import annotations

import re

from lookalike.telegram.texts import LIKENESS_BANDS, TEXTS

LIKENESS_KEYS = (*(key for _, key in LIKENESS_BANDS), "look_unique")


def _pattern(template: str) -> re.Pattern[str]:
    """A caption's first line as the fake Bot API stores it (HTML parsed away) for one band's template."""
    plain = re.escape(template.replace("<b>", "").replace("</b>", ""))
    plain = plain.replace(re.escape("{name}"), "(?P<name>.+)").replace(re.escape("{similarity}"), r"(?P<pct>\d+%)")
    return re.compile(plain)


PATTERNS = {lang: [(key, _pattern(texts[key])) for key in LIKENESS_KEYS] for lang, texts in TEXTS.items()}


def matched(caption: str, lang: str = "en") -> tuple[str, int, str]:
    """(name, %, band key) from the caption's first line; AssertionError if no band's words fit it."""
    first = caption.split("\n", 1)[0]
    for key, pattern in PATTERNS[lang]:
        if found := pattern.fullmatch(first):
            return found["name"], int(found["pct"].rstrip("%")), key
    raise AssertionError(f"not a card caption: {first!r}")
