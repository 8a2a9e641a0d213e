"""Catalog cleaning from descriptors alone: which photos to leave out, and which persons may be one human.

Pure functions (no I/O, no dlib). ``build_embeddings`` runs :func:`clean` on every build over every described
photo, the ones left out last time included: the rules depend on the other photos, so a photo comes back once what
made it doubtful is fixed. Limits are L2 distances between dlib descriptors, measured on ``../shared/lfw``
(jitters=0, 5,596 photos with a usable face, 2,792 people; ``bench/cleaning.py`` has the method and the table):

- one person's photos are 0.435 apart at the median, 0.636 at the 99th percentile (19,508 pairs); different
  people 0.80 at the median, 0.594 at the 1st percentile, 0.377 at the millionth (16.7M pairs).
- a copy of a photo (96 LFW photos): re-encoded as JPEG q60 0.086 median / 0.19 max, shrunk to 60% 0.10 / 0.17,
  enlarged 2× 0.05 / 0.13, cropped 8% 0.05 / 0.13, mirrored 0.19 / 0.28. Under DUPLICATE_LIMIT=0.25 every copy
  but some mirrored ones counts as the same image; no two LFW photos of different people come that close
  except real duplicates (3 pairs, 0.00 to 0.18: one press photo filed under both people in it).
- wrong person (WRONG_LIMIT=0.50, :func:`_wrong_person`): 10 of the 2,860 photos of LFW people with ≥3 photos
  are left out (0.35%; some are LFW's own errors); a photo moved from one person's folder to another's is left out
  100 times out of 100, while 0.51% of the genuine photos go with them.
- 2 photos (PAIR_LIMIT=0.64, the 99th percentile above): 0.6% of LFW's 357 two-photo people are reported; a
  pair made of two different people would be 97% of the time. Which one is wrong cannot be told: both stay.
- same human under two names (SAME_HUMAN_LIMIT=0.36 between the persons' mean descriptors): one human split
  under two names is found 48 times out of 50 with ≥2 photos on each side, 15 out of 50 with a single photo on
  one side (a lone photo is as close to a lookalike as to a second photo of the same human). LFW as it is gives
  11 pairs among its 2,792 people: one real (Chyung Dai-chul / Dai Chul Chyung), the others lookalikes (Serena
  and Venus Williams; 7 pairs of East Asian men: dlib's descriptor separates them less well). Reported only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

WRONG_PERSON = "wrong person"
DUPLICATE = "duplicate"
SAME_HUMAN = "same human under two names?"
DISAGREE = "2 photos disagree"

WRONG_LIMIT = 0.50  # a photo's scaled distance to the mean of its person's other photos
PAIR_LIMIT = 0.64  # between the 2 photos of a person: the 99th percentile of one person's photos
DUPLICATE_LIMIT = 0.25  # beyond every re-encoded, resized or cropped copy; below any two different LFW people
SAME_HUMAN_LIMIT = 0.36  # between two persons' mean descriptors


@dataclass
class Cleaning:
    """What the rules found: photos to leave out (index, reason) and pairs of persons to look at.

    A suspicious pair with ``person_a == person_b`` is a person with 2 photos that disagree: which one is wrong
    cannot be told, so both stay and the report shows them.
    """

    excluded: list[tuple[int, str]] = field(default_factory=list)
    suspicious: list[tuple[str, str, float, str]] = field(default_factory=list)


def clean(
    persons: Sequence[str], sha256s: Sequence[str], vectors: np.ndarray, labels: Sequence[str] | None = None
) -> Cleaning:
    """Apply the rules in order: duplicates, then wrong person (over what duplicates left), then same human.

    ``labels`` name the photos in the reasons (their paths); by default ``photo <index>``.
    """
    n = len(persons)
    if n == 0:
        return Cleaning()
    labels = list(labels) if labels is not None else [f"photo {i}" for i in range(n)]
    vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(n, -1)
    names, codes = np.unique(np.asarray(persons, dtype=object).astype(str), return_inverse=True)
    near_ids, near_dist = nearest_other(vectors, codes)
    out = Cleaning()
    excluded: dict[int, str] = {}
    groups = np.split(np.argsort(codes, kind="stable"), np.cumsum(np.bincount(codes, minlength=len(names)))[:-1])
    excluded.update(_duplicates(codes, groups, list(sha256s), vectors, near_ids, near_dist, names, labels))
    for members in groups:
        kept = np.array([i for i in members if i not in excluded], dtype=np.int64)
        if len(kept) >= 3:
            excluded.update(_wrong_person(kept, vectors, codes, near_ids, near_dist, names))
        elif len(kept) == 2:
            d = float(np.linalg.norm(vectors[kept[0]] - vectors[kept[1]]))
            if d > PAIR_LIMIT:
                pid = str(names[codes[kept[0]]])
                why = f"{DISAGREE}: distance {d:.2f} > {PAIR_LIMIT:.2f}; which one is wrong cannot be told, both kept"
                out.suspicious.append((pid, pid, d, why))
    out.suspicious += _same_human(codes, groups, excluded, vectors, names)
    out.excluded = sorted(excluded.items())
    return out


def nearest_other(vectors: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each row, the nearest row with another code: (ids, L2 distances); -1 and inf where there is none.

    Exact, in blocks of rows (~64 MB whatever the size: never an N×N matrix); rows are sorted by code so that a
    row's own person is one contiguous range of columns to mask. Time grows as N² (see bench/cleaning.py).
    """
    n = len(vectors)
    ids = np.full(n, -1, dtype=np.int64)
    dist = np.full(n, np.inf, dtype=np.float32)
    order = np.argsort(codes, kind="stable")
    v, c = np.ascontiguousarray(vectors[order], dtype=np.float32), codes[order]
    lo, hi = np.searchsorted(c, c, side="left"), np.searchsorted(c, c, side="right")
    sq = np.einsum("ij,ij->i", v, v)
    block = max(1, (1 << 24) // max(n, 1))
    for start in range(0, n, block):
        stop = min(n, start + block)
        d2 = v[start:stop] @ v.T
        d2 *= -2.0
        d2 += sq[None, :]
        for r in range(start, stop):
            d2[r - start, lo[r] : hi[r]] = np.inf
        j = d2.argmin(axis=1)
        best = d2[np.arange(stop - start), j] + sq[start:stop]
        found = np.isfinite(best)
        ids[order[start:stop][found]] = order[j[found]]
        dist[order[start:stop][found]] = np.sqrt(np.maximum(best[found], 0.0))
    return ids, dist


def _pairwise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d2 = np.einsum("ij,ij->i", a, a)[:, None] + np.einsum("ij,ij->i", b, b)[None, :] - 2.0 * (a @ b.T)
    return np.sqrt(np.maximum(d2, 0.0))


def _score(v: np.ndarray, others: np.ndarray) -> float:
    """How far a photo is from the person's ``others``: see :func:`_wrong_person`; inf if there are none."""
    k = len(others)
    if not k:
        return float("inf")
    return float(np.sqrt(k / (k + 1)) * np.linalg.norm(v - others.mean(axis=0)))


def _closest(i: int, near_ids: np.ndarray, near_dist: np.ndarray, codes: np.ndarray, names: np.ndarray) -> str:
    j = near_ids[i]
    return f"; closest to {names[codes[j]]} ({near_dist[i]:.2f})" if j >= 0 else ""


def _duplicates(
    codes: np.ndarray,
    groups: list[np.ndarray],
    sha256s: list[str],
    vectors: np.ndarray,
    near_ids: np.ndarray,
    near_dist: np.ndarray,
    names: np.ndarray,
    labels: list[str],
) -> dict[int, str]:
    """Copies of one image (same file, or descriptors under DUPLICATE_LIMIT apart) filed under different persons.

    The copy is kept under the person whose other photos it agrees with best (the wrong-person score, within
    WRONG_LIMIT) and left out elsewhere; if no person's other photos vouch for it, every copy is left out.
    """
    parent = list(range(len(codes)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[str, int] = {}
    for i, digest in enumerate(sha256s):
        parent[root(i)] = root(first.setdefault(digest, i))
    for i in np.flatnonzero((near_dist < DUPLICATE_LIMIT) & (near_ids >= 0)):
        parent[root(i)] = root(int(near_ids[i]))
    clusters: dict[int, list[int]] = {}
    for i in range(len(codes)):
        clusters.setdefault(root(i), []).append(i)
    excluded: dict[int, str] = {}
    for copies in clusters.values():
        if len({codes[i] for i in copies}) < 2:
            continue
        in_cluster = set(copies)
        agree = {i: _score(vectors[i], vectors[[m for m in groups[codes[i]] if m not in in_cluster]]) for i in copies}
        best = min(copies, key=agree.__getitem__)
        if agree[best] <= WRONG_LIMIT:
            home = names[codes[best]]
            for i in copies:
                if codes[i] != codes[best]:
                    how = "same file as" if sha256s[i] == sha256s[best] else "near-identical to"
                    vs = f"{agree[i]:.2f}" if np.isfinite(agree[i]) else "no other photos"
                    excluded[i] = (
                        f"{DUPLICATE}: {how} {labels[best]}, kept under {home} whose other photos it matches "
                        f"({agree[best]:.2f} vs {vs} here)"
                    )
        else:
            where = ", ".join(sorted({str(names[codes[i]]) for i in copies}))
            for i in copies:
                excluded[i] = f"{DUPLICATE}: the same image is filed under {where}; no one's other photos vouch for it"
    return excluded


def _wrong_person(
    kept: np.ndarray,
    vectors: np.ndarray,
    codes: np.ndarray,
    near_ids: np.ndarray,
    near_dist: np.ndarray,
    names: np.ndarray,
) -> dict[int, str]:
    """Photos too far from the mean of the person's other photos, worst first, one at a time.

    Score: distance to the mean of the other k photos times sqrt(k/(k+1)), which makes its spread the same for 3
    photos as for 50 (a mean of 2 photos is noisier). Unscaled, the limit that flagged 0.8% of LFW's genuine
    photos flagged 2.7% of those of 3-photo people; scaled, 0.3%. The worst photo goes first and the rest are
    scored again without it, so one wrong photo does not drag the genuine ones out with it. The mean rather than
    the median distance to the others: fewer false flags and more planted photos caught (0.60% / 99.2% against
    0.84% / 98.9%). A person whose photos are
    mostly someone else's loses the genuine ones instead: the report shows them beside the rest.
    """
    members = list(kept)
    name = names[codes[kept[0]]]
    out: dict[int, str] = {}
    while len(members) >= 3:
        v = vectors[members]
        k = len(members) - 1
        scores = np.sqrt(k / (k + 1)) * np.linalg.norm(v - (v.sum(axis=0) - v) / k, axis=1)
        worst = int(np.argmax(scores))
        if scores[worst] <= WRONG_LIMIT:
            break
        i = members.pop(worst)
        out[i] = (
            f"{WRONG_PERSON}: {scores[worst]:.2f} from the other {k} photos of {name} (limit {WRONG_LIMIT:.2f})"
            f"{_closest(i, near_ids, near_dist, codes, names)}"
        )
    return out


def _same_human(
    codes: np.ndarray, groups: list[np.ndarray], excluded: dict[int, str], vectors: np.ndarray, names: np.ndarray
) -> list[tuple[str, str, float, str]]:
    """Pairs of persons whose mean descriptors (over kept photos) are under SAME_HUMAN_LIMIT apart.

    Means, because averaging removes pose and light: for one human split under two names with ≥2 photos on each
    side the means are close, for lookalikes they are not. With a single photo on one side the mean is that photo
    and a lookalike is as close as a second photo of the same human: few such pairs are found (see module doc).
    """
    kept = [(c, g[[i not in excluded for i in g]]) for c, g in enumerate(groups)]
    kept = [(c, g) for c, g in kept if len(g)]
    if len(kept) < 2:
        return []
    means = np.stack([vectors[g].mean(axis=0) for _, g in kept]).astype(np.float32)
    ids, dist = nearest_other(means, np.arange(len(kept)))
    found = []
    for a, b in sorted({(min(r, int(ids[r])), max(r, int(ids[r]))) for r in np.flatnonzero(dist < SAME_HUMAN_LIMIT)}):
        (ca, ga), (cb, gb) = kept[a], kept[b]
        d = float(np.linalg.norm(means[a] - means[b]))
        why = (
            f"{SAME_HUMAN}: their {len(ga)} and {len(gb)} photos average {d:.2f} apart "
            f"(limit {SAME_HUMAN_LIMIT:.2f}); reported, not merged"
        )
        found.append((str(names[ca]), str(names[cb]), d, why))
    return found
