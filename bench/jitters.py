"""Catalog jitters: what each costs per photo, and what it buys in identification and in the similarity %.

    nice -n 5 .venv/bin/python -m bench.jitters [--quick]

The build describes a catalog photo with ``--catalog-jitters`` passes of dlib's ResNet over randomly jittered copies
of the face chip, averaged; the bot describes a user's photo at jitters 0, and so do the queries here. Three
catalogs, each described at every value of JITTERS the way ``build_embeddings`` describes a catalog photo
(``describe_photo``, quality rules on), indexed by the shipped ``build_index`` (reference-face calibration and hub
offsets refitted on that catalog's descriptors: ``bench.quality.make_catalog``) and asked through the shipped match
path (``bench.quality.new_top``: apparent sex "auto", hub-corrected ranking):

- LFW: the first photo of each person of the bench's catalog split (``make_reference_faces.split``, never a reference
  face); queries: up to QUERIES_PER_PERSON other photos of each person, the largest face, as the bot takes it;
- congress: the portraits of ``../shared/congress``; queries: the members' news photos of bench/quality.py (LFW and
  ``../shared/faces``, the face nearest the centre);
- faces: the first photo of each ``../shared/faces`` person, as ``testkit.data.build_catalog``; queries: the rest.

Strangers, whose % is read, are described as users' photos, one photo per person: the LFW people of the strangers
split (in no catalog here), and for the LFW and congress catalogs the ``../shared/faces`` people too (but the two who
are members of Congress). --quick takes QUICK_LFW LFW people, QUICK_CONGRESS members (the queried ones among them)
and QUICK_STRANGERS LFW strangers.

dlib computes num_jitters 0 and 1 alike: ``num_jitters <= 1`` is one pass over the chip as it is, no jitter (dlib's
tools/python/src/face_recognition.cpp). Jitters 1 is measured once, as 0, and the run checks on the timed photos that
the two descriptors are identical.

Time per photo: the whole ``describe_photo`` (decode, detection, landmarks, descriptor passes, thumbnail) in this one
process on one core, on a sample of each catalog's photos, the jitters values interleaved photo by photo in a
rotating order; CPU time beside wall time and the load average say how much the shared machine took.

Descriptors are cached per photo and jitters by ``make_reference_faces.describe`` (/tmp/quality_cache): the first
full run describes ~1,700 photos at jitters 3 and 10 (~15 min on 2 free cores; --quick ~5); later runs take ~2 min.
"""

from __future__ import annotations

import argparse
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.common import Section, median, table
from bench.make_reference_faces import CONGRESS, CONGRESS_IN_LFW, describe, lfw_people, share, split
from bench.quality import (
    CONGRESS_IN_FACES,
    congress_people,
    congress_sexes,
    faces_people,
    first_photos,
    fmt_q,
    make_catalog,
    new_top,
    quantiles,
    queries,
    worst,
)
from lookalike.build.describe import describe_photo

JITTERS = (0, 1, 3, 10)
SAME_AS = {1: 0}  # dlib: num_jitters <= 1 is the same single plain pass
MEASURED = tuple(j for j in JITTERS if j not in SAME_AS)
QUERIES_PER_PERSON = 10  # LFW: enough to count, few enough that a much-photographed person does not dominate
QUICK_LFW, QUICK_CONGRESS, QUICK_STRANGERS = 300, 150, 300
TIMED = 30  # photos timed per catalog (--quick: TIMED_QUICK)
TIMED_QUICK = 8
MILLION = 1_000_000
CLUSTER_CORES = 64


@dataclass(frozen=True)
class Setting:
    """A catalog to describe at every jitters, and what it is asked."""

    name: str
    photos: list[Path]  # one per person
    persons: list[str]
    sexes: dict[str, str] | None  # None: estimated from the photos, as the build does
    truth: list[str]  # the person each query shows
    queries: np.ndarray  # their descriptors, as the bot describes a user's photo
    strangers: np.ndarray  # people not in the catalog, described the same way


@dataclass(frozen=True)
class Outcome:
    """One catalog at one jitters."""

    people: int  # in the catalog (a photo the build would skip leaves its person out)
    hits1: np.ndarray  # per query: the right person first
    hits5: np.ndarray  # per query: among the first five
    shown: list[float]  # strangers' % at LEVELS
    moved: float  # median L2 distance of a photo's descriptor from its jitters-0 descriptor


def settings(quick: bool) -> list[Setting]:
    groups, lfw, faces = split(), lfw_people(), faces_people()
    _, stranger_vecs = first_photos(sorted(groups["strangers"], key=share)[: QUICK_STRANGERS if quick else None], lfw)
    face_names, face_vecs = first_photos(list(faces), faces)

    names = sorted(groups["catalog"], key=share)[: QUICK_LFW if quick else None]
    truth, vecs = queries([(n, p) for n in names for p in lfw[n][1 : 1 + QUERIES_PER_PERSON]])
    lfw_setting = Setting(
        "LFW", [lfw[n][0] for n in names], names, None, truth, vecs, np.vstack([stranger_vecs, face_vecs])
    )

    members = [(b, p) for name, b in sorted(CONGRESS_IN_LFW.items()) for p in lfw[name]]
    members += [(b, p) for f, b in CONGRESS_IN_FACES.items() for p in faces[f]]
    truth, vecs = queries(members, "centre")
    bioguides = sorted(congress_people())
    if quick:
        asked = set(truth)
        bioguides = sorted(asked | set([b for b in bioguides if b not in asked][: QUICK_CONGRESS - len(asked)]))
    not_members = [i for i, f in enumerate(face_names) if f not in CONGRESS_IN_FACES]
    congress = Setting(
        "congress",
        [CONGRESS / f"{b}.jpg" for b in bioguides],
        bioguides,
        congress_sexes(),
        truth,
        vecs,
        np.vstack([stranger_vecs, face_vecs[not_members]]),
    )

    truth, vecs = queries([(n, p) for n in faces for p in faces[n][1:]])
    faces_setting = Setting("faces", [faces[n][0] for n in faces], list(faces), None, truth, vecs, stranger_vecs)
    return [lfw_setting, congress, faces_setting]


def evaluate(setting: Setting, jitters: int, plain: np.ndarray) -> Outcome:
    """Describe the catalog at ``jitters``, build its index and calibration, ask it the queries and the strangers."""
    vectors = describe(setting.photos, "catalog", jitters)
    catalog = make_catalog(f"jitters-{setting.name}-{jitters}", vectors, setting.persons, setting.sexes)
    inside = set(catalog.persons)
    asked = [i for i, t in enumerate(setting.truth) if t in inside]  # a person left out cannot be found at any jitters
    found = new_top(catalog, setting.queries[asked], 5).persons
    truth = [setting.truth[i] for i in asked]
    shown = new_top(catalog, setting.strangers).shown
    moved = np.linalg.norm(vectors - plain, axis=1)
    return Outcome(
        len(inside),
        np.array([t == f[0] for t, f in zip(truth, found)]),
        np.array([t in f[:5] for t, f in zip(truth, found)]),
        quantiles(shown),
        float(np.nanmedian(moved)),
    )


def quality_rows(setting: Setting, outcomes: dict[int, Outcome]) -> tuple[list[list[str]], dict]:
    rows, data = [], {}
    base = outcomes[0]
    for j in JITTERS:
        o = outcomes[SAME_AS.get(j, j)]
        gained, lost = int((o.hits1 & ~base.hits1).sum()), int((~o.hits1 & base.hits1).sum())
        rows.append(
            [
                setting.name,
                f"{j}" + (f" (= {SAME_AS[j]})" if j in SAME_AS else ""),
                str(o.people),
                str(len(o.hits1)),
                f"{o.hits1.mean():.3f}",
                f"{o.hits5.mean():.3f}",
                "—" if SAME_AS.get(j, j) == 0 else f"+{gained} / −{lost} (p {sign_test(gained, lost):.2g})",
                f"{fmt_q(o.shown)} ({worst(o.shown):.1f})",
                f"{o.moved:.3f}",
            ]
        )
        data[str(j)] = {
            "people": o.people,
            "queries": len(o.hits1),
            "top1": float(o.hits1.mean()),
            "top5": float(o.hits5.mean()),
            "gained": gained,
            "lost": lost,
            "strangers_shown": o.shown,
            "moved": o.moved,
        }
    return rows, {"strangers": len(setting.strangers), "by_jitters": data}


def sign_test(gained: int, lost: int) -> float:
    """Two-sided exact sign test: how likely a split at least this uneven is if jitters changed nothing."""
    n = gained + lost
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(gained, lost) + 1)) / 2**n
    return min(1.0, 2 * tail)


# --- time per photo -----------------------------------------------------------------------------------------


def timed_photos(setting: Setting, count: int) -> list[Path]:
    """``count`` photos spread over the catalog, among those the build keeps (a skipped photo is never described)."""
    kept = [p for p, v in zip(setting.photos, describe(setting.photos, "catalog", 0)) if not np.isnan(v).any()]
    return kept[:: max(1, len(kept) // count)][:count]


def time_photos(photos: list[Path]) -> tuple[dict[int, list[tuple[float, float]]], dict[int, np.ndarray], int]:
    """(wall s, CPU s) of ``describe_photo`` per jitters, interleaved photo by photo in a rotating order; the
    descriptors it made; and how many photos gave a jitters-1 descriptor different from their jitters-0 one (dlib
    says none)."""
    describe_photo(photos[0].read_bytes(), 0)  # load the models outside the timing
    spent: dict[int, list[tuple[float, float]]] = {j: [] for j in MEASURED}
    made: dict[int, list[np.ndarray]] = {j: [] for j in MEASURED}
    differ = 0
    for i, path in enumerate(photos):
        data = path.read_bytes()
        turn = i % len(MEASURED)
        for j in MEASURED[turn:] + MEASURED[:turn]:
            wall, cpu = time.perf_counter(), time.process_time()
            described = describe_photo(data, j)
            spent[j].append((time.perf_counter() - wall, time.process_time() - cpu))
            made[j].append(described.vector)
        for one, same in SAME_AS.items():
            a, b = describe_photo(data, one).vector, describe_photo(data, same).vector
            differ += a is None or b is None or not np.array_equal(a, b)
    return spent, {j: np.stack(v) for j, v in made.items()}, differ


def timing(settings_: list[Setting], count: int) -> tuple[str, dict]:
    """The time table: CPU time per photo is the core time it takes (dlib-bin describes on one thread), what a
    build's cores are billed; wall time beside it shows how much of a core the shared machine left this process."""
    loads = [os.getloadavg()[0]]
    spent, again, differ, photos = {}, {j: [] for j in MEASURED}, 0, 0
    for s in settings_:
        sample = timed_photos(s, count)
        spent[s.name], made, d = time_photos(sample)
        differ, photos = differ + d, photos + len(sample)
        loads.append(os.getloadavg()[0])
        for j in MEASURED:  # the same photos as the bulk describing made them: another process, another order
            again[j] += np.linalg.norm(made[j] - describe(sample, "catalog", j), axis=1).tolist()
    every = {j: [x for s in spent.values() for x in s[j]] for j in MEASURED}
    cpu_0 = median([c for _, c in every[0]])
    rows, by_jitters = [], {}
    for j in JITTERS:
        m = SAME_AS.get(j, j)
        cpu = {name: 1000 * median([c for _, c in s[m]]) for name, s in spent.items()}
        all_cpu, all_wall = 1000 * median([c for _, c in every[m]]), 1000 * median([w for w, _ in every[m]])
        core_hours = all_cpu * MILLION / 1000 / 3600
        rows.append(
            [
                f"{j}" + (f" (= {SAME_AS[j]})" if j in SAME_AS else ""),
                *(f"{cpu[name]:.0f}" for name in spent),
                f"{all_cpu:.0f}",
                f"{all_wall:.0f}",
                f"{all_cpu / 1000 / cpu_0:.1f}×",
                f"{core_hours:,.0f}",
                f"{core_hours / 2 / 24:.1f} days",
                f"{core_hours / CLUSTER_CORES:.1f} h",
                f"{median(again[m]):.3f}",
            ]
        )
        by_jitters[str(j)] = {
            "cpu_ms": cpu,
            "cpu_ms_all": all_cpu,
            "wall_ms_all": all_wall,
            "core_hours_1m": core_hours,
            "described_again_l2": median(again[m]),
        }
    top = max(MEASURED)
    per_pass = 1000 * median([(a[1] - b[1]) / (top - 1) for a, b in zip(every[top], every[0])])
    core_share = median([c / w for x in every.values() for w, c in x])
    head = ["jitters", *(f"{name}: CPU ms" for name in spent), "all: CPU ms", "all: wall ms", "× jitters 0"]
    head += ["1M photos: core-hours", "on 2 cores", f"on {CLUSTER_CORES} cores", "described again: median L2"]
    note = (
        f"{photos} photos ({count} per catalog, {', '.join(map(str, MEASURED))} jitters each, interleaved), median "
        f"per photo. A million photos: CPU time × 10⁶, spread evenly over the cores. One jitter pass costs "
        f"~{per_pass:.0f} ms of CPU (median over photos of (jitters {top} − jitters 0) / {top - 1}); it does not grow "
        "with the photo (a 150 px chip), while decoding and detection do: these photos are ~250 px, a 1280 px one "
        'adds ~20 ms to every row (RESULTS.md, "Per-photo pipeline"). Jitters 1 gave descriptors identical to '
        f"jitters 0 on {photos - differ} of {photos} photos (dlib: the same single pass), so its row repeats "
        f"jitters 0's. \"Described again\": the timed photo's descriptor against the same photo's from the bulk "
        "describing (another process, another order): dlib draws the jitters from one random generator per loaded "
        "model (one per process here), so a jittered descriptor depends on what that process described before. "
        f"Load: {min(loads):.1f}–{max(loads):.1f} (1-min load average) on {os.cpu_count()} cores while timing; "
        f"this process got a median {core_share:.0%} of a core (CPU / wall), "
        + (
            "so wall times are inflated by the other processes and CPU times are the figures to use."
            if core_share < 0.9
            else "so wall and CPU times agree; the cost columns use CPU time, which load does not inflate."
        )
    )
    data = {"photos": photos, "per_pass_cpu_ms": per_pass, "jitters1_differs": differ, "by_jitters": by_jitters}
    return table(head, rows) + "\n\n" + note, {**data, "load": [min(loads), max(loads)], "core_share": core_share}


def run(quick: bool) -> list[Section]:
    section = Section("Catalog jitters: build cost against match quality")
    all_settings = settings(quick)
    rows, data = [], {}
    for s in all_settings:
        plain = describe(s.photos, "catalog", 0)
        outcomes = {j: evaluate(s, j, plain) for j in MEASURED}
        more, data[s.name] = quality_rows(s, outcomes)
        rows += more
    head = ["catalog", "jitters", "people", "queries", "top-1", "top-5", "top-1 vs 0: gained / lost"]
    head += ["strangers' % 10/25/50/75/90 (worst gap)", "moved from 0 (median L2)"]
    strangers = ", ".join(f"{s.name} {len(s.strangers)}" for s in all_settings)
    section.add(
        "Catalog photos described at each jitters, queries (users' photos) at jitters 0; each catalog's calibration "
        f'refitted at each jitters by `build_index`. Strangers: {strangers}. "gained / lost": queries right at this '
        'jitters and wrong at 0, and the reverse (p: two-sided sign test). "moved": how far jittering moves a '
        "catalog descriptor from its jitters-0 self.\n\n" + table(head, rows)
    )
    text, timing_data = timing(all_settings, TIMED_QUICK if quick else TIMED)
    section.add("#### Time per catalog photo, one process on one core\n\n" + text)
    section.data = {"jitters_quality": data, "jitters_timing": timing_data}
    return [section]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_LFW} LFW people, {QUICK_CONGRESS} members")
    run(parser.parse_args().quick)
