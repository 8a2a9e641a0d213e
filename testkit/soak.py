"""Load and soak: many simulated users send photos to ``bot.py`` (a real process) through the fake Bot API,
with a restart of the bot in the middle. Used by tests/test_soak.py (CI size) and bench/soak.py (full size)."""

from __future__ import annotations

import io
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from testkit.fake_bot_api import FakeBotApi
from testkit.running import BotProcess


@dataclass
class SoakReport:
    photos: int
    users: int
    answered: dict[int, int]  # message id of each photo → number of replies to it
    latencies: list[float]  # seconds from a photo's arrival at the fake to the reply's
    max_overall_rate: int
    max_chat_rate: int
    rss_warm: list[int] = field(default_factory=list)  # tree RSS after warm-up, one per bot run
    rss_end: list[int] = field(default_factory=list)  # tree RSS at the end of each bot run
    requests_metric: list[float] = field(default_factory=list)  # lookalike_requests_total scraped during the run

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies)

    @property
    def p95(self) -> float:
        return statistics.quantiles(self.latencies, n=20)[-1]

    @property
    def rss_growth(self) -> float:
        """Worst relative growth of the bot's memory from warm-up to the end of a run."""
        return max(end / warm - 1 for warm, end in zip(self.rss_warm, self.rss_end))


def telegram_sized(paths: list[Path], side: int = 640) -> list[bytes]:
    """The photos as Telegram would deliver them: JPEG, at most ``side`` px on the long side."""
    out = []
    for path in paths:
        image = Image.open(path).convert("RGB")
        image.thumbnail((side, side))
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=87)
        out.append(buffer.getvalue())
    return out


def _start(api: FakeBotApi, assets: Path, workdir: Path, metrics_port: int, workers: int) -> BotProcess:
    env = {"LOOKALIKE_PHOTOS_PER_MINUTE": "1000", "LOOKALIKE_QUEUE_SIZE": "1000"}
    return BotProcess(api, assets, workdir, workers=workers, metrics_port=metrics_port, env=env)


def _stop(bot: BotProcess) -> None:
    if bot.stop() != 0:
        raise RuntimeError(f"bot.py exited with {bot.process.returncode}; see {bot.log}")


def run_soak(
    api: FakeBotApi,
    assets: Path,
    workdir: Path,
    photos: list[bytes],
    total: int,
    users: int,
    rate: float,
    metrics_port: int,
    workers: int = 2,
    warmup: int = 30,
) -> SoakReport:
    """Offer ``total`` photos from ``users`` users at ``rate`` per second; restart the bot halfway."""
    bot = _start(api, assets, workdir, metrics_port, workers)
    api.wait_for_poller(timeout=120)
    report = SoakReport(total, users, {}, [], 0, 0)
    sent_at: dict[int, float] = {}
    halves = (total // 2, total - total // 2)
    start = time.monotonic()
    n = 0
    for half, count in enumerate(halves):
        for _ in range(count):
            time.sleep(max(0.0, start + n / rate - time.monotonic()))
            message = api.send_photo(1_000_000 + n % users, photos[n % len(photos)])["message"]
            sent_at[message["message_id"]] = time.monotonic()
            n += 1
            if n - sum(halves[:half]) == warmup:
                _replied(api, n - 5, timeout=120)
                report.rss_warm.append(bot.rss())
            if n % 50 == 0:
                report.requests_metric.append(bot.requests_total())
        _replied(api, n, timeout=300)
        report.rss_end.append(bot.rss())
        _stop(bot)
        if half == 0:
            bot = _start(api, assets, workdir, metrics_port, workers)
            api.wait_for_poller(timeout=120)
    replies = [r for r in api.sent(method="sendPhoto") if r.message.get("reply_to_message")]
    for reply in replies:
        asked = reply.message["reply_to_message"]["message_id"]
        if asked in sent_at:
            report.answered[asked] = report.answered.get(asked, 0) + 1
            report.latencies.append(reply.at - sent_at[asked])
    stats = api.rate_stats(1.0)
    report.max_overall_rate = stats.overall
    report.max_chat_rate = max(stats.per_chat.values())
    return report


def _replied(api: FakeBotApi, count: int, timeout: float) -> None:
    api.wait_for(lambda r: r.method == "sendPhoto" and r.ok, timeout=timeout, count=count)
