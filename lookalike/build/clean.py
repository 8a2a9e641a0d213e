"""Catalog cleaning from descriptors alone: which photos to leave out, and which persons may be one human.

Pure functions (no dlib, no I/O). ``build_embeddings`` runs :func:`clean` on every build over every described photo,
the ones left out last time included: the rules depend on the other photos, so a photo comes back once what made it
doubtful is fixed. The limits are L2 distances between dlib descriptors (jitters 0), set where LFW's photos of one
person, of different people and copies of one photo fall (``bench/cleaning.py`` measures them; the figures are in
bench/RESULTS.md, "Catalog cleaning on LFW"):

- duplicate (DUPLICATE_LIMIT): beyond every re-encoded, resized or cropped copy of a photo (some mirrored ones fall
  outside), closer than any two LFW photos of different people but real duplicates (one press photo filed under
  both people in it).
- wrong person (WRONG_LIMIT, :func:`_wrong_person`): a photo moved from one person's folder to another's is left out,
  while few genuine photos go with it (some of those are LFW's own errors).
- 2 photos (PAIR_LIMIT, the 99th percentile of one person's photo pairs): a pair of two different people is nearly
  always beyond it, but which photo is wrong cannot be told: both stay, the pair is reported.
- same human under two names (SAME_HUMAN_LIMIT, between the persons' mean descriptors): found when both sides have
  ≥2 photos, seldom with a single photo on one side (a lone photo is as close to a lookalike as to a second photo of
  the same human). Lookalikes come this close too (LFW's Williams sisters; dlib's descriptor separates East Asian
  men less well): reported only, never merged.

The rules need each photo's nearest photo of another person and each person's nearest other person, exact
(:mod:`lookalike.build.knn`) and computed afresh only for what changed since the last build
(:mod:`lookalike.build.neighbours`): the result is the same with or without the previous build's cache.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from lookalike.build.knn import CHUNK
from lookalike.build.neighbours import KEY, CleaningCache, Neighbours, mean_key, nearest_other_cached, photo_keys

WRONG_PERSON = "wrong person"
DUPLICATE = "duplicate"
SAME_HUMAN = "same human under two names?"
DISAGREE = "2 photos disagree"

WRONG_LIMIT = 0.50  # a photo's scaled distance to the mean of its person's other photos
PAIR_LIMIT = 0.64  # between the 2 photos of a person: the 99th percentile of one person's photos
DUPLICATE_LIMIT = 0.25  # beyond every re-encoded, resized or cropped copy; below any two different LFW people
SAME_HUMAN_LIMIT = 0.36  # between two persons' mean descriptors
_SCREEN = 1e-3  # vectorised screening margin: groups this close to a limit are judged exactly as before


@dataclass
class Cleaning:
    """What the rules found: photos to leave out (index, reason) and pairs of persons to look at.

    A suspicious pair with ``person_a == person_b`` is a person with 2 photos that disagree: which one is wrong
    cannot be told, so both stay and the report shows them. ``cache`` holds this build's neighbours, for the next.
    """

    excluded: list[tuple[int, str]] = field(default_factory=list)
    suspicious: list[tuple[str, str, float, str]] = field(default_factory=list)
    cache: CleaningCache = field(default_factory=CleaningCache, compare=False, repr=False)


def clean(
    persons: Sequence[str],
    sha256s: Sequence[str],
    vectors: np.ndarray,
    labels: Sequence[str] | None = None,
    cache: CleaningCache | None = None,
) -> Cleaning:
    """Apply the rules in order: duplicates, then wrong person (over what duplicates left), then same human.

    ``labels`` name the photos in the reasons (their paths); by default ``photo <index>``. ``cache``: the previous
    build's ``Cleaning.cache`` (same descriptors, see the module doc); the result is the same with or without it.
    """
    n = len(persons)
    if n == 0:
        return Cleaning()
    labels = list(labels) if labels is not None else [f"photo {i}" for i in range(n)]
    sha256s = list(sha256s)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(n, -1)
    pids = [str(p) for p in persons]
    names = np.array(sorted(set(pids)))
    index = {p: c for c, p in enumerate(names.tolist())}
    codes = np.fromiter((index[p] for p in pids), dtype=np.int64, count=n)
    keys = photo_keys(pids, sha256s)
    near_ids, near_dist, photo_nb = nearest_other_cached(vectors, codes, keys, cache.photos if cache else None)
    out = Cleaning()
    order = np.argsort(codes, kind="stable")
    groups = np.split(order, np.cumsum(np.bincount(codes, minlength=len(names)))[:-1])
    excluded = _duplicates(codes, groups, sha256s, vectors, near_ids, near_dist, names, labels)
    kept = np.ones(n, dtype=bool)
    kept[list(excluded)] = False
    count, sums = _group_sums(vectors, codes, order[kept[order]], len(names))
    wrong: dict[int, str] = {}
    for c in _doubtful(vectors, codes, order, kept, count, sums):
        members = groups[c][kept[groups[c]]]
        if len(members) >= 3:
            wrong.update(_wrong_person(members, vectors, codes, near_ids, near_dist, names))
        else:
            d = float(np.linalg.norm(vectors[members[0]] - vectors[members[1]]))
            if d > PAIR_LIMIT:
                pid = str(names[c])
                why = f"{DISAGREE}: distance {d:.2f} > {PAIR_LIMIT:.2f}; which one is wrong cannot be told, both kept"
                out.suspicious.append((pid, pid, d, why))
    if wrong:
        kept[list(wrong)] = False
        redo = np.unique(codes[list(wrong)])
        rows = np.concatenate([groups[c][kept[groups[c]]] for c in redo])
        count[redo], sums[redo] = 0, 0.0
        if len(rows):
            again, again_sums = _group_sums(vectors, codes, rows, len(names))
            count[redo], sums[redo] = again[redo], again_sums[redo]
        excluded.update(wrong)
    same, mean_nb = _same_human(codes, order, kept, count, sums, sha256s, names, cache.means if cache else None)
    out.suspicious += same
    out.excluded = sorted((int(i), why) for i, why in excluded.items())
    out.cache = CleaningCache(photo_nb, mean_nb)
    return out


def _group_sums(vectors: np.ndarray, codes: np.ndarray, rows: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Per code: how many of ``rows`` (sorted by code) it has, and their vectors' sum (float64, in row order)."""
    count = np.bincount(codes[rows], minlength=size)
    dim = vectors.shape[1]
    sums = np.zeros((size, dim), dtype=np.float64)
    for s in range(0, len(rows), CHUNK):  # bincount over (code, dimension) cells: one pass, any group sizes
        part, c = rows[s : s + CHUNK], codes[rows[s : s + CHUNK]]
        first, span = int(c[0]), int(c[-1] - c[0] + 1)
        cells = ((c - first)[:, None] * dim + np.arange(dim)).ravel()
        sums[first : first + span] += np.bincount(cells, vectors[part].ravel(), span * dim).reshape(span, dim)
    return count, sums


def _doubtful(
    vectors: np.ndarray, codes: np.ndarray, order: np.ndarray, kept: np.ndarray, count: np.ndarray, sums: np.ndarray
) -> np.ndarray:
    """Codes that the wrong-person or 2-photo rule may flag (the rest cannot be: screened at once, with a margin).

    A photo's wrong-person score is sqrt((k+1)/k) × its distance to the mean of all k+1 kept photos; two photos are
    twice their distance to their mean apart.
    """
    rows = order[kept[order]]
    c = codes[rows]
    k = np.maximum(count - 1, 1).astype(np.float64)
    scale = np.where(count == 2, 2.0, np.sqrt((k + 1) / k))
    limit = np.where(count == 2, PAIR_LIMIT, WRONG_LIMIT) - _SCREEN
    means = (sums / np.maximum(count, 1)[:, None]).astype(np.float32)
    worst = np.zeros(len(count))
    for s in range(0, len(rows), CHUNK):
        pc = c[s : s + CHUNK]
        d = vectors[rows[s : s + CHUNK]] - means[pc]
        np.maximum.at(worst, pc, np.sqrt(np.einsum("ij,ij->i", d, d)) * scale[pc])
    return np.flatnonzero((count >= 2) & (worst > limit))


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
    links: list[tuple[int, int]] = []
    if len(set(sha256s)) != len(sha256s):  # the same file twice: linked to its first row
        first = dict(zip(reversed(sha256s), range(len(sha256s) - 1, -1, -1)))
        same = np.fromiter((first[digest] for digest in sha256s), dtype=np.int64, count=len(sha256s))
        repeated = np.flatnonzero(same != np.arange(len(sha256s)))
        links += zip(repeated.tolist(), same[repeated].tolist())
    close = np.flatnonzero((near_dist < DUPLICATE_LIMIT) & (near_ids >= 0))
    links += zip(close.tolist(), near_ids[close].tolist())
    parent: dict[int, int] = {}  # union-find over the linked rows only (a few, even at 1M photos)

    def root(i: int) -> int:
        parent.setdefault(i, i)
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in links:
        parent[root(i)] = root(j)
    clusters: dict[int, list[int]] = {}
    for i in sorted(parent):
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
    photos as for 50 (a mean of 2 photos is noisier): unscaled, one limit flags several times more genuine photos
    of 3-photo people than of the rest. The worst photo goes first and the rest are scored again without it, so one
    wrong photo does not drag the genuine ones out with it. The mean rather than the median distance to the others:
    on LFW it gave fewer false flags and caught more planted photos. A person whose photos are mostly someone
    else's loses the genuine ones instead: the report shows them beside the rest.
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
    codes: np.ndarray,
    order: np.ndarray,
    kept: np.ndarray,
    count: np.ndarray,
    sums: np.ndarray,
    sha256s: list[str],
    names: np.ndarray,
    cache: Neighbours | None,
) -> tuple[list[tuple[str, str, float, str]], Neighbours]:
    """Pairs of persons whose mean descriptors (over kept photos) are under SAME_HUMAN_LIMIT apart; the means'
    neighbours for the next build.

    Means, because averaging removes pose and light: for one human split under two names with ≥2 photos on each
    side the means are close, for lookalikes they are not. With a single photo on one side the mean is that photo
    and a lookalike is as close as a second photo of the same human: few such pairs are found.
    """
    present = np.flatnonzero(count)
    if not len(present):
        return [], Neighbours.empty()
    means = (sums[present] / count[present, None]).astype(np.float32)
    shas = [sha256s[i] for i in order[kept[order]].tolist()]  # by person, as ``present``
    ends = np.cumsum(count[present]).tolist()
    keys = [mean_key(str(names[c]), shas[s:e]) for c, s, e in zip(present.tolist(), [0, *ends[:-1]], ends)]
    ids, dist, neighbours = nearest_other_cached(means, np.arange(len(present)), np.array(keys, dtype=KEY), cache)
    found = []
    for a, b in sorted({(min(r, int(ids[r])), max(r, int(ids[r]))) for r in np.flatnonzero(dist < SAME_HUMAN_LIMIT)}):
        ca, cb = present[a], present[b]
        d = float(np.linalg.norm(means[a] - means[b]))
        why = (
            f"{SAME_HUMAN}: their {count[ca]} and {count[cb]} photos average {d:.2f} apart "
            f"(limit {SAME_HUMAN_LIMIT:.2f}); reported, not merged"
        )
        found.append((str(names[ca]), str(names[cb]), d, why))
    return found, neighbours
