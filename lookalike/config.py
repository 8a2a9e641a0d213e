"""All settings in one place: each has a default that works, an environment variable and a command-line flag.

Precedence: flag > environment > default. ``TELEGRAM_TOKEN`` is the one variable without the ``LOOKALIKE_`` prefix.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def _opt(default: Any, help: str, env: str | None = None) -> Any:
    return field(default=default, metadata={"help": help, "env": env})


@dataclass(frozen=True)
class Settings:
    """Everything an operator can tune. Build with ``Settings.from_args`` (flags + env) or ``Settings.from_env``."""

    # --- engine
    assets: Path = _opt(Path("assets"), "folder with the built embeddings, index and calibration")
    photos: Path = _opt(Path("photos"), "folder with celebrity photos (and an optional catalog.json)")
    top_k: int = _opt(5, "matches to compute per face (the card shows the first, 'More matches' the rest)")
    min_similarity: float = _opt(1.0, "lowest similarity (percent) ever shown (the calibrated value is clamped to it)")
    jitters: int = _opt(0, "descriptor jitters for a user's photo (each one costs a full descriptor pass)")
    detect_max_side: int = _opt(400, "long side (px) of the copy the face detector tries first")
    max_faces: int = _opt(5, "most faces described and answered in one photo")
    ef_search: int = _opt(0, "HNSW efSearch at query time (0: the value saved with the index)")
    # --- bot
    token: str = _opt("", "bot token from @BotFather", env="TELEGRAM_TOKEN")
    base_url: str = _opt("https://api.telegram.org/bot", "Bot API base URL (a local Bot API server, tests)")
    base_file_url: str = _opt("https://api.telegram.org/file/bot", "Bot API file download base URL")
    webhook_url: str = _opt("", "public HTTPS URL Telegram posts updates to; empty: long polling")
    listen: str = _opt("127.0.0.1", "address the webhook server binds (put a reverse proxy in front)")
    port: int = _opt(8443, "port the webhook server binds")
    webhook_secret: str = _opt("", "secret Telegram must send in X-Telegram-Bot-Api-Secret-Token (default: random)")
    api_timeout: float = _opt(30.0, "seconds to wait for the Bot API before a request counts as timed out")
    workers: int = _opt(len(os.sched_getaffinity(0)), "face worker processes (default: the cores this process may use)")
    queue_size: int = _opt(16, "photos waiting for a worker before users are told the bot is busy")
    photos_per_minute: int = _opt(6, "photos one user may send per minute")
    feedback_db: Path = _opt(Path("feedback.sqlite3"), "SQLite file for 👍/👎 votes and stats")
    link_template: str = _opt(
        "https://en.wikipedia.org/wiki/{alias}", "link for a celebrity with an alias ('' for none)"
    )
    admin_ids: str = _opt("", "comma-separated Telegram user ids allowed to use /stats")
    metrics_port: int = _opt(0, "serve /healthz and /metrics on this port in polling mode (0: off)")
    log_format: str = _opt("text", "log format: text or json")
    log_level: str = _opt("INFO", "log level")

    def __post_init__(self) -> None:
        """Refuse bad settings at start-up, with the setting's name, rather than on some user's request later."""
        try:
            _ = self.admins
        except ValueError:
            raise ValueError(f"admin_ids: expected comma-separated user ids, got {self.admin_ids!r}") from None
        try:
            self.link_template.format(alias="x", name="x")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"link_template: only {{alias}} and {{name}} may be used ({exc!r})") from None
        for name, allowed in (("log_format", ("text", "json")),):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name}: one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        for name in ("workers", "top_k", "max_faces", "photos_per_minute"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be at least 1, got {getattr(self, name)}")

    @property
    def admins(self) -> frozenset[int]:
        return frozenset(int(x) for x in self.admin_ids.replace(" ", "").split(",") if x)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then the environment, then ``overrides``."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            name = env_name(f)
            if name in env:
                values[f.name] = _convert(f, env[name])
        values.update(overrides)
        return cls(**values)

    @classmethod
    def from_args(
        cls,
        argv: Sequence[str] | None = None,
        parser: argparse.ArgumentParser | None = None,
        only: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> tuple[Settings, argparse.Namespace]:
        """Parse flags for the fields in ``only`` (all when None) on top of the environment."""
        parser = parser or argparse.ArgumentParser()
        add_arguments(parser, only)
        args = parser.parse_args(argv)
        given = {k: v for k, v in vars(args).items() if v is not None and k in _field_names()}
        return cls.from_env(env, **given), args


def env_name(f: dataclasses.Field) -> str:
    return f.metadata.get("env") or f"LOOKALIKE_{f.name.upper()}"


def _field_names() -> set[str]:
    return {f.name for f in dataclasses.fields(Settings)}


def _convert(f: dataclasses.Field, raw: str) -> Any:
    kind = type(f.default)
    return Path(raw) if isinstance(f.default, Path) else kind(raw)


def add_arguments(parser: argparse.ArgumentParser, only: Sequence[str] | None = None) -> None:
    """Add ``--flag`` for each chosen setting; the default stays None so the environment can fill it in."""
    for f in dataclasses.fields(Settings):
        if only is not None and f.name not in only:
            continue
        kind = Path if isinstance(f.default, Path) else type(f.default)
        shown = "(secret)" if f.name in ("token", "webhook_secret") else repr(f.default)
        parser.add_argument(
            "--" + f.name.replace("_", "-"),
            type=kind,
            default=None,
            help=f"{f.metadata['help']} [env {env_name(f)}; default {shown}]".replace("%", "%%"),
        )
