"""Load and soak in CI size: 200 users, a restart in the middle; LOOKALIKE_SOAK_PHOTOS raises the count."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

from testkit.data import BuiltCatalog
from testkit.fake_bot_api import FakeBotApi
from testkit.running import free_port
from testkit.soak import run_soak, telegram_sized

PHOTOS = int(os.environ.get("LOOKALIKE_SOAK_PHOTOS", "240"))


def test_soak_every_photo_answered_once_within_limits(catalog: BuiltCatalog, tmp_path: Path) -> None:
    paths = [p for person in sorted(catalog.queries) for p in catalog.queries[person][:3]]
    photos = telegram_sized(paths)
    with FakeBotApi() as api:
        report = run_soak(api, catalog.assets, tmp_path, photos, PHOTOS, users=200, rate=4.0, metrics_port=free_port())
        api.assert_no_internal_errors()
    print(
        f"\nsoak: {report.photos} photos, p50 {report.p50:.2f} s, p95 {report.p95:.2f} s, "
        f"max {report.max_overall_rate}/s overall, {report.max_chat_rate}/s per chat, "
        f"RSS growth {100 * report.rss_growth:.1f}%"
    )
    assert len(report.answered) == PHOTOS and set(report.answered.values()) == {1}
    assert report.max_overall_rate <= 30 and report.max_chat_rate <= 1
    assert report.rss_growth < 0.10
    metric = report.requests_metric
    assert any(b > a for a, b in itertools.pairwise(metric))  # the counters move while traffic flows
