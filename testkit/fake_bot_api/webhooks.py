"""Webhooks: POST updates to the bot's webhook server as Telegram does, with its secret token header."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.parse
import urllib.request
from types import EllipsisType

from testkit.fake_bot_api.content import Content
from testkit.fake_bot_api.model import JSON

Secret = str | EllipsisType | None  # ...: the secret setWebhook stored; None: no header
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


class Webhooks(Content):
    """Deliveries are explicit (tests choose when and what); ``*_async`` twins serve a bot in the caller's loop."""

    def deliver_webhook(
        self, url: str | None = None, update: JSON | None = None, secret_token: Secret = ..., *, timeout: float = 10.0
    ) -> int:
        """POST ``update`` (default: the oldest pending) to the webhook like Telegram; returns the HTTP status.

        ``url`` and ``secret_token`` default to what setWebhook stored; ``secret_token=None`` omits the header.
        A 2xx answer confirms the update.  Blocking: from the bot's own loop use ``deliver_webhook_async``.
        """
        update = dict(update or next(iter(self.pending_updates()), {}))
        if not update:
            raise ValueError("no pending update to deliver")
        status = self.deliver_webhook_raw(url, json.dumps(update).encode(), secret_token, timeout=timeout)
        if 200 <= status < 300:
            with self._cond:
                self._updates = [(k, u) for k, u in self._updates if u.get("update_id") != update.get("update_id")]
                self._notify()
        return status

    def deliver_webhook_raw(
        self, url: str | None, body: bytes, secret_token: Secret = ..., *, timeout: float = 10.0
    ) -> int:
        """POST arbitrary ``body`` bytes (e.g. b"null", b"[]") to the webhook; returns the HTTP status."""
        config = self._webhook
        target = url or (config.url if config else "")
        if urllib.parse.urlsplit(target).hostname not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"webhooks are only delivered to a loopback url, not {target!r}")
        token = (config.secret_token if config else None) if secret_token is ... else secret_token
        headers = {"Content-Type": "application/json"} | ({SECRET_HEADER: token} if token is not None else {})
        request = urllib.request.Request(target, data=body, headers=headers, method="POST")
        try:
            with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request, timeout=timeout) as answer:
                answer.read()
                return int(answer.status)
        except urllib.error.HTTPError as exc:
            exc.close()
            return exc.code

    async def deliver_webhook_async(
        self, url: str | None = None, update: JSON | None = None, secret_token: Secret = ..., *, timeout: float = 10.0
    ) -> int:
        """``deliver_webhook`` from a worker thread, so a webhook server in the caller's loop can answer."""
        return await asyncio.to_thread(self.deliver_webhook, url, update, secret_token, timeout=timeout)

    async def deliver_webhook_raw_async(
        self, url: str | None, body: bytes, secret_token: Secret = ..., *, timeout: float = 10.0
    ) -> int:
        """``deliver_webhook_raw`` from a worker thread."""
        return await asyncio.to_thread(self.deliver_webhook_raw, url, body, secret_token, timeout=timeout)
