"""Every catalog person's sex (``Person.sex``, what serving filters matches by): from ``catalog.json`` when it
says, else estimated from the person's kept photos; and the people an operator should look at.

A person's estimate is the mean P(female) (``lookalike/engine/sex.py``) over their kept photos: one photo is
sometimes misread (a cap, a profile, a child beside them), several together much less often. The estimator reads
our own descriptors, which are computed anyway, so this costs a dot product a photo.

Doubts are reported, never acted on: a person whose photos disagree (some clearly a woman's, others clearly a
man's: often a wrong person the cleaning could not single out), and a ``catalog.json`` sex the photos clearly
contradict (a typo in the file, or the wrong photos). "Clearly" is a photo's P(female) beyond ``CLEAR`` or below
1 − ``CLEAR``; figures in bench/RESULTS.md.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from lookalike.assets import Person
from lookalike.engine.sex import SexEstimator

CLEAR = 0.9  # P(female) above this: clearly a woman's photo; below 1 − CLEAR: clearly a man's
BLOCK = 1 << 16  # descriptors per estimator call: memory stays ~64 MB at a million photos


@dataclass(frozen=True)
class SexDoubt:
    """A person whose sex the operator should check, why, and P(female) of each of their kept photos."""

    person: str
    reason: str
    female: tuple[float, ...]  # in the order of the person's photos in the catalog


def settle_sexes(
    persons: dict[str, Person],
    person_rows: np.ndarray,
    vectors: np.ndarray,
) -> tuple[dict[str, Person], list[SexDoubt]]:
    """``persons`` (in catalog order, ``person_rows[i]`` the number of row ``i``'s person) with every sex filled in,
    and the doubts, in catalog order."""
    estimator = SexEstimator.load()
    female = np.concatenate(
        [estimator.female_probability(vectors[i : i + BLOCK]) for i in range(0, len(vectors), BLOCK)] or [np.zeros(0)]
    )
    order = np.argsort(person_rows, kind="stable")
    starts = np.searchsorted(person_rows[order], np.arange(len(persons) + 1))
    settled, doubts = {}, []
    for n, (pid, person) in enumerate(persons.items()):
        p = female[order[starts[n] : starts[n + 1]]]
        settled[pid] = person if person.sex else dataclasses.replace(person, sex="F" if p.mean() >= 0.5 else "M")
        reason = _doubt(person.sex, p)
        if reason:
            doubts.append(SexDoubt(pid, reason, tuple(round(float(x), 3) for x in p)))
    return settled, doubts


def _doubt(given: str | None, female: np.ndarray) -> str:
    """Why this person's sex needs a look, or ""."""
    women, men = int((female > CLEAR).sum()), int((female < 1 - CLEAR).sum())
    if women and men:
        return f"photos disagree: {women} of {female.size} look like a woman's, {men} like a man's"
    mean = float(female.mean()) if female.size else 0.5
    if (given == "F" and mean < 1 - CLEAR) or (given == "M" and mean > CLEAR):
        shown = f"its {female.size} photos look" if female.size > 1 else "its photo looks"
        return (
            f"catalog.json says {given}, {shown} like {'a man' if given == 'F' else 'a woman'}'s (P(female) {mean:.2f})"
        )
    return ""
