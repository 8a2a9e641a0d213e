"""Bot latency: simulated users send photos to the real bot through the fake Bot API server.

Everything runs on loopback: ``testkit/fake_bot_api.py`` plays Telegram, ``testkit/running.py`` runs the real
bot (``lookalike.telegram.app.serve``) in a thread with 2 workers. Photos arrive as a Poisson stream at RATES
photos/s, each from a new user (so per-user limits never apply); latency is from the moment the update
is queued for getUpdates to the moment the fake server receives the card (sendPhoto), both on
``time.monotonic``. The photos are dev-set photos at 1280 px (Telegram's largest size).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import Section, big_query_photos, dev_catalog, median, percentile, scaled_jpeg, table, verdict
from testkit.fake_bot_api import FakeBotApi
from testkit.running import bot_settings, running_bot

RATES = (1.0, 2.0, 4.0, 8.0, 12.0)  # beyond 4/s: where the knee is (2 workers serve ~15 photos/s)
WORKERS = 2


def offer(api, photos: list[bytes], rate: float, seconds: float, first_user: int, seed: int) -> list[float]:
    """Send a Poisson stream for ``seconds`` at ``rate``; return each photo's update-to-card latency in s."""
    rng = np.random.default_rng(seed)
    sent: dict[int, float] = {}
    start = time.monotonic()
    due = start
    user = first_user
    while due - start < seconds:
        time.sleep(max(0.0, due - time.monotonic()))
        api.send_photo(user, photos[user % len(photos)])
        sent[user] = time.monotonic()
        user += 1
        due += float(rng.exponential(1.0 / rate))
    latencies = []
    for uid, t0 in sent.items():
        [card] = api.wait_for_sent(chat_id=uid, method="sendPhoto", timeout=120)
        latencies.append(card.at - t0)
    return latencies


def run(quick: bool) -> list[Section]:
    section = Section("Bot latency under load")
    photos = [scaled_jpeg(p, 1280) for p in big_query_photos(12)]
    seconds = 15.0 if quick else 45.0
    results: dict[float, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp, FakeBotApi() as api:
        settings = bot_settings(
            api, dev_catalog().assets, Path(tmp), workers=WORKERS, queue_size=256, photos_per_minute=100_000
        )
        with running_bot(settings):
            api.wait_for_poller(timeout=60)
            offer(api, photos, 1.0, 2.0, first_user=1_000, seed=0)  # warm-up: first replies pay connection set-up
            for i, rate in enumerate(RATES):
                results[rate] = offer(api, photos, rate, seconds, first_user=10_000 * (i + 1), seed=i + 1)
                print(f"  {rate} photos/s: p50 {median(results[rate]):.2f} s", flush=True)
    rows = [
        [f"{rate:g}", len(lat), f"{median(lat):.2f}", f"{percentile(lat, 95):.2f}", f"{max(lat):.2f}"]
        for rate, lat in results.items()
    ]
    p95_4 = percentile(results[4.0], 95)
    section.add(
        f"{WORKERS} workers, Poisson arrivals for {seconds:.0f} s per rate, a new user per photo, 1280 px photos.\n\n"
        + table(["offered photos/s", "photos", "p50 s", "p95 s", "max s"], rows)
        + f"\n\n- **p95 at 4 photos/s: {p95_4:.2f} s** (target ≤ 1 s: {verdict(p95_4 <= 1.0)})."
    )
    section.data["bot_latency"] = {
        rate: {"p50": median(lat), "p95": percentile(lat, 95)} for rate, lat in results.items()
    }
    return [section]


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    run(parser.parse_args().quick)
