"""The cleaning report an operator opens after a build: ``assets/cleaning-report.html``, one self-contained page.

Every photo left out (wrong person, duplicate) beside a few of its person's kept photos, every suspicious pair of
persons side by side, the persons whose sex needs a look (photos that disagree, or contradict ``catalog.json``),
and the unusable photos (no face, too small, tilted, …), grouped by reason with counts at
the top. Every picture is embedded (base64 JPEG): kept photos are the build's thumbnails, photos left out have
none, so theirs are drawn from the photo files. Sections are capped so that a catalog of a million photos still
gives a page of a few MB.
"""

from __future__ import annotations

import base64
import html
import io
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from lookalike.assets import CatalogData, PhotoRecord, Skipped, ThumbnailWriter
from lookalike.build.clean import DUPLICATE, WRONG_PERSON
from lookalike.build.describe import CATALOG_LIMITS, thumbnail
from lookalike.build.sexes import SexDoubt
from lookalike.engine.images import load_rgb

REPORT_FILE = "cleaning-report.html"
MAX_SHOWN = 100  # photos or pairs shown per section; the rest are counted
MAX_UNUSABLE = 200  # unusable photos shown with a thumbnail (decoding each costs ~10 ms)
CONTEXT = 6  # kept photos of the person shown beside a doubtful one
THUMB_PX = 112
# Persons named in clean's reasons whose photos are shown too: where a duplicate was kept, whom a wrong photo is like.
KEPT_UNDER = r", kept under (\S+) whose"
CLOSEST = r"; closest to (\S+) \("

CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;background:#fafafa}
h1{margin:0 0 4px}h2{margin:28px 0 8px;border-bottom:2px solid #ddd;padding-bottom:4px}
.note{color:#666}.counts td{padding:2px 12px 2px 0}.counts td.n{text-align:right;font-weight:600}
.item{display:flex;gap:16px;align-items:flex-start;background:#fff;border:1px solid #e2e2e2;border-radius:6px;
padding:10px;margin:8px 0}
.photo{width:112px;flex:none;font-size:11px;color:#555;overflow-wrap:anywhere}
.photo img,.strip img{width:112px;height:112px;object-fit:cover;border-radius:4px;display:block;background:#eee}
.out img{outline:4px solid #d33;outline-offset:-4px}.doubt img{outline:4px solid #e90;outline-offset:-4px}
.why{flex:1;min-width:280px}.why b{display:block;margin-bottom:4px}.strip{display:flex;gap:6px;flex-wrap:wrap}
.strip figure{margin:0;width:112px;font-size:11px;color:#555;overflow-wrap:anywhere}
.grid{display:flex;flex-wrap:wrap;gap:8px}.grid .photo{background:#fff;border:1px solid #e2e2e2;padding:4px}
.vs{align-self:center;font-weight:600;color:#a60}
"""


def write_report(
    assets: Path,
    photos_dir: Path,
    store: CatalogData,
    thumbs: ThumbnailWriter,
    left_out: Sequence[tuple[PhotoRecord, str]],
    suspicious: Sequence[tuple[str, str, float, str]],
    unusable: Sequence[Skipped],
    sex_doubts: Sequence[SexDoubt] = (),
    cleaning: bool = True,
) -> Path:
    """Write the page for this build; ``left_out`` are the photos cleaning took out, with their reasons."""
    page = _Page(photos_dir, store, thumbs)
    wrong = [(p, why) for p, why in left_out if why.startswith(WRONG_PERSON)]
    dups = [(p, why) for p, why in left_out if why.startswith(DUPLICATE)]
    pairs = [s for s in suspicious if s[0] != s[1]]
    disagree = [s for s in suspicious if s[0] == s[1]]
    kinds = Counter(_kind(s.reason) for s in unusable)
    head = [
        ("left out: wrong person", len(wrong), "#wrong"),
        ("left out: duplicate under another name", len(dups), "#duplicate"),
        ("reported: same human under two names?", len(pairs), "#same"),
        ("reported: a person's 2 photos disagree", len(disagree), "#disagree"),
        ("reported: sex to check", len(sex_doubts), "#sex"),
        *((f"unusable: {kind}", n, "#unusable") for kind, n in kinds.most_common()),
    ]
    rows = "".join(
        f'<tr><td>{f"<a href={a!r}>{html.escape(t)}</a>" if n else html.escape(t)}</td><td class="n">{n}</td></tr>'
        for t, n, a in head
    )
    state = "" if cleaning else " <b>Cleaning is off (--keep-outliers): nothing was left out by it.</b>"
    body = [
        "<h1>Catalog cleaning report</h1>",
        f'<p class="note">{len(store.persons)} persons, {len(store.photos)} photos kept in the catalog.{state} '
        "Red: left out of the catalog. Orange: kept, but look at it. Fix the photos folder and build again: every "
        "build judges every photo afresh.</p>",
        f'<table class="counts">{rows}</table>',
        page.section("wrong", "Wrong person", wrong, page.left_out_item),
        page.section("duplicate", "Duplicate under another name", dups, page.left_out_item),
        page.section("same", "Same human under two names? (reported, not merged)", pairs, page.pair_item),
        page.section("disagree", "A person's 2 photos disagree (both kept)", disagree, page.pair_item),
        page.section("sex", "Sex to check (photos disagree, or contradict catalog.json)", sex_doubts, page.sex_item),
        page.unusable(unusable, kinds),
    ]
    text = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Catalog cleaning report</title>'
        f"<style>{CSS}</style></head><body>{''.join(body)}</body></html>"
    )
    out = assets / REPORT_FILE
    out.write_text(text, encoding="utf-8")
    return out


def _kind(reason: str) -> str:
    """A skip reason without its numbers: "head tilted 41° (limit 30°)" → "head tilted", to count by kind."""
    head = re.split(r"[:(]", reason, maxsplit=1)[0]
    return re.sub(r"\s+", " ", re.sub(r"\d+°?", "", head)).strip() or reason


class _Page:
    def __init__(self, photos_dir: Path, store: CatalogData, thumbs: ThumbnailWriter) -> None:
        self.photos_dir, self.store, self.thumbs = photos_dir, store, thumbs
        self.kept: dict[str, list[PhotoRecord]] = {}
        for photo in store.photos:
            self.kept.setdefault(photo.person, []).append(photo)

    def section(self, anchor: str, title: str, items: Sequence, render) -> str:
        if not items:
            return ""
        more = len(items) - MAX_SHOWN
        tail = f'<p class="note">… and {more} more not shown.</p>' if more > 0 else ""
        shown = "".join(render(item) for item in items[:MAX_SHOWN])
        return f'<h2 id="{anchor}">{html.escape(title)} ({len(items)})</h2>{shown}{tail}'

    def left_out_item(self, item: tuple[PhotoRecord, str]) -> str:
        photo, why = item
        kind, _, detail = why.partition(": ")
        strips = [(f"Kept photos of {self._name(photo.person)}:", photo.person)]
        for pattern, title in ((KEPT_UNDER, "Kept under"), (CLOSEST, "Closest other person:")):
            other = re.search(pattern, why)
            if other and other[1] in self.kept and other[1] != photo.person:
                strips.append((f"{title} {self._name(other[1])}:", other[1]))
        shown = "".join(f'<p class="note">{html.escape(t)}</p>{self._strip(pid)}' for t, pid in strips)
        return (
            f'<div class="item"><div class="photo out">{self._img(self._drawn(photo))}'
            f"{html.escape(photo.path)}</div>"
            f'<div class="why"><b>{html.escape(kind)}</b>{html.escape(detail)}{shown}</div></div>'
        )

    def pair_item(self, item: tuple[str, str, float, str]) -> str:
        a, b, _, why = item
        detail = why.partition(": ")[2]  # the section's title says which kind
        if a == b:
            sides = f'<div class="doubt">{self._strip(a)}</div>'
            title = self._name(a)
        else:
            sides = f'<div class="strip">{self._strip(a)}<div class="vs">≈</div>{self._strip(b)}</div>'
            title = f"{self._name(a)} ≈ {self._name(b)}"
        return f'<div class="item"><div class="why"><b>{html.escape(title)}</b>{html.escape(detail)}{sides}</div></div>'

    def sex_item(self, doubt: SexDoubt) -> str:
        """The person's kept photos, each captioned with how it looks (P(female) from the estimator): the most male
        and the most female looking ones when there are more than CONTEXT."""
        person = self.store.persons.get(doubt.person)
        given = f" (catalog.json: {person.sex})" if person and person.sex else ""
        looks = sorted(zip(doubt.female, self.kept.get(doubt.person, [])), key=lambda fp: fp[0])
        if len(looks) > CONTEXT:
            looks = looks[: CONTEXT // 2] + looks[-(CONTEXT // 2) :]
        figures = "".join(
            f"<figure>{self._img(self.thumbs.get(p.sha256))}{html.escape(p.path)}<br>P(female) {female:.2f}</figure>"
            for female, p in looks
        )
        return (
            f'<div class="item"><div class="why"><b>{html.escape(self._name(doubt.person) + given)}</b>'
            f'{html.escape(doubt.reason)}<div class="strip doubt">{figures}</div></div></div>'
        )

    def unusable(self, skips: Sequence[Skipped], kinds: Counter) -> str:
        if not skips:
            return ""
        parts = [f'<h2 id="unusable">Unusable photos ({len(skips)})</h2>']
        shown = 0
        for kind, n in kinds.most_common():
            cards = []
            for skip in (s for s in skips if _kind(s.reason) == kind):
                if shown >= MAX_UNUSABLE:
                    break
                shown += 1
                cards.append(
                    f'<div class="photo">{self._img(self._whole(skip.path))}{html.escape(skip.path)}<br>'
                    f"{html.escape(skip.reason)}</div>"
                )
            listed = f'<div class="grid">{"".join(cards)}</div>' if cards else ""
            more = f'<p class="note">… {n - len(cards)} more not shown.</p>' if n > len(cards) else ""
            parts.append(f"<h3>{html.escape(kind)} ({n})</h3>{listed}{more}")
        return "".join(parts)

    def _name(self, pid: str) -> str:
        person = self.store.persons.get(pid)
        return person.name if person else pid

    def _strip(self, pid: str) -> str:
        photos = self.kept.get(pid, [])
        figures = "".join(
            f"<figure>{self._img(self.thumbs.get(p.sha256))}{html.escape(p.path)}</figure>" for p in photos[:CONTEXT]
        )
        more = f'<p class="note">+{len(photos) - CONTEXT} more</p>' if len(photos) > CONTEXT else ""
        if not photos:
            return f'<p class="note">(no kept photos of {html.escape(self._name(pid))})</p>'
        return f'<div class="strip">{figures}</div>{more}'

    def _drawn(self, photo: PhotoRecord) -> bytes | None:
        """A left-out photo's portrait: its thumbnail if this build still has it, else drawn from the photo."""
        try:
            return self.thumbs.get(photo.sha256) or thumbnail(self._read(photo.path), photo.box)
        except Exception:  # the photo vanished or no longer decodes: the page still lists it
            return None

    def _whole(self, path: str) -> bytes | None:
        try:
            image = Image.fromarray(load_rgb(self._read(path), CATALOG_LIMITS))
        except Exception:
            return None
        out = io.BytesIO()
        image.thumbnail((2 * THUMB_PX, 2 * THUMB_PX))
        image.save(out, format="JPEG", quality=80)
        return out.getvalue()

    def _read(self, path: str) -> bytes:
        return (self.photos_dir / path).read_bytes()

    @staticmethod
    def _img(jpeg: bytes | None) -> str:
        if jpeg is None:
            return '<img alt="(cannot be shown)">'
        with Image.open(io.BytesIO(jpeg)) as im:
            im = im.convert("RGB")
            im.thumbnail((2 * THUMB_PX, 2 * THUMB_PX))
            out = io.BytesIO()
            im.save(out, format="JPEG", quality=80)
        return f'<img src="data:image/jpeg;base64,{base64.b64encode(out.getvalue()).decode()}" alt="">'
