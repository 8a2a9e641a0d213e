"""Soak: 200 users, 2,000 photos (400 with --quick) through ``bot.py`` and the fake Bot API, with a
restart of the bot halfway; the same harness as tests/test_soak.py (testkit/soak.py) (CI size), run long."""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.common import Section, dev_catalog, table, verdict
from testkit.fake_bot_api import FakeBotApi
from testkit.running import free_port
from testkit.soak import run_soak, telegram_sized

USERS = 200
RATE = 4.0  # photos/s offered: the bot-latency section puts 2 workers' knee well above this


def run(quick: bool) -> list[Section]:

    catalog = dev_catalog()
    photos = telegram_sized([p for paths in catalog.queries.values() for p in paths[:3]])
    total = 400 if quick else 2000
    with tempfile.TemporaryDirectory() as tmp, FakeBotApi() as api:
        report = run_soak(api, catalog.assets, Path(tmp), photos, total, USERS, RATE, metrics_port=free_port())
    once = sum(1 for n in report.answered.values() if n == 1)
    rows = [
        ["photos offered / answered exactly once", f"{report.photos} / {once}"],
        ["p50 / p95 update → card (s)", f"{report.p50:.2f} / {report.p95:.2f}"],
        ["max sends in any 1 s, overall (limit 30)", report.max_overall_rate],
        ["max sends in any 1 s to one chat (limit 1)", report.max_chat_rate],
        ["bot + workers RSS growth after warm-up (limit 10%)", f"{100 * report.rss_growth:.1f}%"],
        ["lookalike_requests_total scraped during the run", ", ".join(f"{v:.0f}" for v in report.requests_metric[:8])],
    ]
    ok = (
        once == report.photos
        and report.max_overall_rate <= 30
        and report.max_chat_rate <= 1
        and report.rss_growth < 0.10
    )
    section = Section("Soak: 200 users, restart halfway")
    section.add(
        f"{USERS} users, {RATE:g} photos/s offered (640 px, as Telegram delivers them), 2 workers, `bot.py` restarted "
        f"with SIGTERM after half the photos.\n\n"
        + table(["measure", "value"], rows)
        + f"\n\n- **Every photo answered exactly once, within Telegram's limits, memory flat: {verdict(ok)}**."
    )
    return [section]


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    run(parser.parse_args().quick)
