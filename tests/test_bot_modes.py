"""How the bot runs: bot.py as operators start it (logs, SIGTERM, restart), webhook mode, limits, busy pool."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from lookalike.telegram.texts import TEXTS
from testkit.data import ROOT, BuiltCatalog
from testkit.fake_bot_api import FakeBotApi
from testkit.running import BotProcess, bot_settings, free_port, running_bot

EN = TEXTS["en"]
TOKEN = "7654321:AAH-very-secret-token_Zx9"


@pytest.fixture()
def api() -> Iterator[FakeBotApi]:
    with FakeBotApi(token=TOKEN) as fake:
        yield fake
        fake.assert_no_internal_errors()


def test_bot_py_logs_no_token_finishes_work_on_sigterm_and_loses_nothing_on_restart(
    api: FakeBotApi, catalog: BuiltCatalog, tmp_path: Path
) -> None:
    bot = BotProcess(api, catalog.assets, tmp_path, "--log-format", "json", "--log-level", "DEBUG")
    try:
        api.wait_for_poller(timeout=90)
        api.send_text(501, "/help")
        api.wait_for_sent(chat_id=501, timeout=10)
        api.send_photo(502, catalog.queries["obama"][0].read_bytes())
        api.wait_for(lambda r: r.method == "getFile", timeout=10)  # the photo is being worked on ...
        assert bot.stop() == 0  # ... when the operator stops the bot
        [card] = api.wait_for_sent(chat_id=502, method="sendPhoto", timeout=5)
        assert "Barack Obama" in card.message["caption"]
    finally:
        if bot.process.poll() is None:
            bot.kill()

    api.send_text(503, "/start")  # arrives while the bot is down
    bot = BotProcess(api, catalog.assets, tmp_path, "--log-level", "DEBUG")
    try:
        api.wait_for_sent(chat_id=503, timeout=90)
        api.wait_for_poller(timeout=10)
        assert bot.stop() == 0
    finally:
        if bot.process.poll() is None:
            bot.kill()
    for chat, count in ((501, 1), (502, 1), (503, 1)):
        assert len(api.sent(chat_id=chat)) == count, f"chat {chat}: {len(api.sent(chat_id=chat))} answers"

    output = bot.log_text()
    assert TOKEN not in output and TOKEN.split(":")[1] not in output
    assert "getUpdates" in output  # library lines with URLs were logged, scrubbed
    records = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    photo = next(r for r in records if r["msg"] == "photo")
    assert photo["user"] == 502 and photo["outcome"] == "matched" and "match" not in photo  # never who with whom
    assert not any("image" in key or "bytes" in key for r in records for key in r)


def scrape_until(port: int, line: str, timeout: float = 5.0) -> str:
    """The /metrics text once it shows ``line`` (or the last one scraped, for the assertion's message)."""
    deadline = time.monotonic() + timeout
    while True:
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        if line in metrics or time.monotonic() > deadline:
            return metrics
        time.sleep(0.05)


def test_webhook_mode_checks_the_secret_and_serves_health_and_metrics(
    api: FakeBotApi, catalog: BuiltCatalog, tmp_path: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook/path"
    settings = bot_settings(api, catalog.assets, tmp_path, webhook_url=url, port=port, webhook_secret="s3cret_42")
    with running_bot(settings):
        api.wait_for(lambda r: r.method == "setWebhook", timeout=60)
        assert api.webhook.url == url and api.webhook.secret_token == "s3cret_42"
        time.sleep(0.2)
        update = api.send_photo(601, catalog.queries["madonna"][1].read_bytes())
        assert api.deliver_webhook(url, update, "wrong-secret") == 403
        assert api.deliver_webhook(url, update, None) == 403
        assert not api.requests("getFile")
        assert api.deliver_webhook(url, update, "s3cret_42") == 200
        [card] = api.wait_for_sent(chat_id=601, method="sendPhoto", timeout=30)
        assert "Madonna" in card.message["caption"]

        health = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5).read())
        assert health["status"] == "ok" and health["workers"] == 2
        metrics = scrape_until(port, 'lookalike_requests_total{outcome="matched"} 1.0')  # counted after sending
        assert 'lookalike_requests_total{outcome="matched"} 1.0' in metrics
        assert "lookalike_webhook_rejected_total 2.0" in metrics
        assert 'lookalike_updates_total{kind="message"} 1.0' in metrics
        assert 'lookalike_stage_seconds_count{stage="analyze"} 1.0' in metrics
        assert "lookalike_queue_depth 0.0" in metrics
    assert not api.requests("getUpdates")


def test_per_user_photo_limit(api: FakeBotApi, catalog: BuiltCatalog, tmp_path: Path) -> None:
    with running_bot(bot_settings(api, catalog.assets, tmp_path, photos_per_minute=2)):
        api.wait_for_poller(timeout=60)
        photo = catalog.queries["obama"][0].read_bytes()
        for _ in range(3):
            api.send_photo(701, photo)
        replies = api.wait_for_sent(chat_id=701, count=3, timeout=30)
        assert sorted(r.method for r in replies) == ["sendMessage", "sendPhoto", "sendPhoto"]
        assert next(r for r in replies if r.method == "sendMessage").message["text"] == EN["slow_down"]
        api.send_photo(702, photo)  # another user is not affected
        assert api.wait_for_sent(chat_id=702, timeout=30)[0].method == "sendPhoto"
    assert api.max_rate(1.0, chat_id=701) <= 1  # paced to one message per second per chat


def test_full_queue_says_busy_and_everyone_gets_an_answer(api: FakeBotApi, catalog: BuiltCatalog, tmp_path) -> None:
    settings = bot_settings(api, catalog.assets, tmp_path, workers=1, queue_size=1)
    with running_bot(settings):
        api.wait_for_poller(timeout=60)
        photo = catalog.queries["colin_powell"][0].read_bytes()
        users = list(range(801, 809))
        for user in users:
            api.send_photo(user, photo)
        replies = [api.wait_for_sent(chat_id=u, timeout=60)[0] for u in users]
    busy = [r for r in replies if r.method == "sendMessage"]
    assert busy and all(r.message["text"] == EN["busy"] for r in busy)
    assert len(replies) - len(busy) >= 2  # the running photo and the queued one were answered with cards


def test_rejected_token_is_reported_without_the_token(api: FakeBotApi, catalog: BuiltCatalog, tmp_path: Path) -> None:
    wrong = "1111111:WRONG-secret-part_Qq7"
    env = {
        **os.environ,
        "TELEGRAM_TOKEN": wrong,
        "LOOKALIKE_BASE_URL": api.base_url,
        "LOOKALIKE_BASE_FILE_URL": api.base_file_url,
    }
    run = subprocess.run(
        [
            sys.executable,
            "bot.py",
            "--assets",
            str(catalog.assets),
            "--workers",
            "1",
            "--feedback-db",
            str(tmp_path / "f.db"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1
    assert "InvalidToken" in run.stderr and "rejected" in run.stderr
    assert wrong not in run.stderr + run.stdout and wrong.split(":")[1] not in run.stderr


def test_bad_settings_are_refused_at_start(catalog: BuiltCatalog) -> None:
    run = subprocess.run(
        [sys.executable, "bot.py", "--token", "1:x", "--assets", str(catalog.assets), "--admin-ids", "12,abc"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2 and "admin_ids" in run.stderr
