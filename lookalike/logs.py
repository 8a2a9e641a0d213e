"""Structured logs that never carry the bot token: text (key=value) or JSON lines.

The token hides in URLs that libraries log (httpx: "POST https://api.telegram.org/bot<token>/getUpdates") and in
exception messages, so it is scrubbed from the *formatted* line, whatever produced it.
"""

from __future__ import annotations

import json
import logging
import sys
import time

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


class RedactingFormatter(logging.Formatter):
    def __init__(self, secrets: list[str], json_lines: bool) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]
        self.json_lines = json_lines

    def format(self, record: logging.LogRecord) -> str:
        fields = {k: v for k, v in record.__dict__.items() if k not in _STANDARD}
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + self.formatException(record.exc_info)
        when = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"
        if self.json_lines:
            line = json.dumps(
                {"ts": when, "level": record.levelname, "logger": record.name, "msg": message, **fields},
                ensure_ascii=False,
                default=str,
            )
        else:
            extra = "".join(f" {k}={v}" for k, v in fields.items())
            line = f"{when} {record.levelname:<7} {record.name}: {message}{extra}"
        return self.redact(line)

    def redact(self, line: str) -> str:
        for secret in self.secrets:
            line = line.replace(secret, "<redacted>")
        return line


def setup_logging(level: str, json_lines: bool, secrets: list[str]) -> None:
    """Root logger to stderr through the redacting formatter; httpx's per-request lines only at WARNING."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter(secrets, json_lines))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("nmslib").setLevel(logging.WARNING)  # a dozen INFO lines per index load


class Throttled:
    """A log line for an error that may repeat many times a second (a poison update, an outage): written at most
    once every ``every`` seconds per key, carrying how many times it happened since the last line."""

    def __init__(self, logger: logging.Logger, every: float = 5.0) -> None:
        self.logger = logger
        self.every = every
        self._last: dict[str, float] = {}
        self._count: dict[str, int] = {}

    def warning(self, key: str, message: str, **fields: object) -> None:
        self._count[key] = self._count.get(key, 0) + 1
        now = time.monotonic()
        if now - self._last.get(key, -float("inf")) < self.every:
            return
        self._last[key] = now
        self.logger.warning(message, extra={**fields, "times": self._count.pop(key)})
