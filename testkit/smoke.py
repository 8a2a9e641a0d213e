"""A bot started elsewhere (a container, a process) checked as a user would: /healthz answers, a selfie gets a card
naming the right person. ``deploy/image-test.sh`` runs it against the Docker image; tests/test_smoke.py runs the same
code against ``bot.py``, so the container check cannot drift from the suite.

    python -m testkit.smoke --info fake.json --metrics-port 18093 --photo selfie.jpg --expect "Joseph Biden Jr."

writes the fake Bot API's address and token to ``--info`` (for the bot's environment), waits for the bot, checks it,
prints ``PASSED`` and keeps serving until ``<info>.stop`` appears (so the bot can be stopped cleanly).
"""

from __future__ import annotations

import argparse
import json
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from testkit.captions import matched
from testkit.fake_bot_api import FakeBotApi

USER = 42


def wait_healthy(port: int, timeout: float = 180.0) -> tuple[float, str]:
    """Seconds until ``/healthz`` on 127.0.0.1:``port`` answered 200, and its body; TimeoutError after ``timeout``."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
                return time.monotonic() - start, answer.read().decode(errors="replace")[:200]
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"no /healthz on port {port} within {timeout:.0f} s")


def check_card(api: FakeBotApi, photo: Path, expect: str | None, timeout: float = 60.0) -> str:
    """Send ``photo`` as a user would and return the card's caption; AssertionError if it does not name ``expect``."""
    api.send_photo(USER, photo.read_bytes())
    [card] = api.wait_for_sent(chat_id=USER, method="sendPhoto", timeout=timeout)
    caption = card.message["caption"]
    name = matched(caption)[0]
    assert expect is None or name == expect, f"the card names {name!r}, not {expect!r}: {caption!r}"
    api.assert_no_internal_errors()
    return caption


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testkit.smoke", description=__doc__.split("\n\n")[0])
    parser.add_argument("--info", type=Path, required=True, help="JSON file to write base_url, base_file_url, token")
    parser.add_argument("--metrics-port", type=int, required=True, help="the bot's /healthz port")
    parser.add_argument("--photo", type=Path, required=True)
    parser.add_argument("--expect", help="the name the card must show")
    args = parser.parse_args(argv)
    with FakeBotApi() as api:
        info = {"base_url": api.base_url, "base_file_url": api.base_file_url, "token": api.token}
        args.info.write_text(json.dumps(info), encoding="utf-8")
        seconds, body = wait_healthy(args.metrics_port)
        print(f"/healthz 200 after {seconds:.1f} s: {body}", flush=True)
        started = time.monotonic()
        caption = check_card(api, args.photo, args.expect)
        print(f"photo → card in {time.monotonic() - started:.2f} s: {caption.splitlines()[0]!r}", flush=True)
        print("PASSED", flush=True)
        stop, deadline = args.info.with_suffix(".stop"), time.monotonic() + 120
        while not stop.exists() and time.monotonic() < deadline:  # serve until the bot has been stopped
            time.sleep(0.2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
