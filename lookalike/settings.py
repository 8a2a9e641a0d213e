"""Every setting once: a default that works, an environment variable and a command-line flag, in one ``Settings``.

Precedence: flag > environment > default. ``TELEGRAM_TOKEN`` is the one variable without the ``LOOKALIKE_`` prefix.
Each setting says which commands of ``python -m lookalike`` take it as a flag (``bot``, ``build``, ``index``,
``match``, ``blend``); a setting means the same thing, under the same name, in every command that has it.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lookalike.assets import CATALOG_FILE
from lookalike.engine.hnsw import HnswParams
from lookalike.engine.images import IMAGE_SUFFIXES
from lookalike.engine.matcher import MATCH_SEX_CHOICES, MatchSex
from lookalike.engine.photo import DetectOptions

SERVE = ("bot", "match", "blend")
EVERY = ("bot", "build", "index", "match", "blend")
PROJECT = Path(__file__).resolve().parent.parent
DEFAULT_CATALOG = PROJECT / "catalogs" / "us-congress"  # served while photos/ is empty (its NOTICE.md says what it is)
SECRETS = ("token", "webhook_secret")


def _opt(default: Any, help: str, commands: tuple[str, ...], env: str | None = None) -> Any:
    return field(default=default, metadata={"help": help, "env": env, "commands": commands})


@dataclass(frozen=True)
class Settings:
    """Everything an operator can tune. Build with ``Settings.from_env`` or ``parse(command, argv)``."""

    # --- the catalog
    photos: Path = _opt(Path("photos"), "folder with celebrity photos (and an optional catalog.json)", ("build",))
    assets: Path = _opt(Path("assets"), "folder with the built catalog: embeddings, index, calibration", EVERY)
    catalog_jitters: int = _opt(0, "descriptor jitters per catalog photo (each one costs a pass)", ("build",))
    quiet: bool = _opt(False, "no progress bars", ("build",))
    keep_outliers: bool = _opt(False, "keep photos the cleaning would leave out (wrong person, duplicates)", ("build",))
    scheduler: str = _opt("", "Dask scheduler address (tcp://HOST:8786) to describe photos on a cluster", ("build",))
    hnsw_m: int = _opt(HnswParams.M, "HNSW links per node", ("index",))
    ef_construction: int = _opt(HnswParams.ef_construction, "HNSW efConstruction", ("index",))
    ef_search: int = _opt(
        0,
        f"HNSW efSearch (0: index builds save {HnswParams.ef_search}, serving uses the saved value)",
        (*SERVE, "index"),
    )
    force: bool = _opt(False, "save the index even if its recall@1 is below the bar", ("index",))
    # --- answering a photo
    top_k: int = _opt(5, "matches per face (the card shows the first, 'More matches' the rest)", SERVE)
    min_similarity: float = _opt(1.0, "lowest similarity (percent) ever shown", SERVE)
    match_sex: MatchSex = _opt(
        "auto",
        "whom a face is matched with: auto (its own apparent sex), F (women), M (men) or any; "
        "in the bot, the default for users who chose nothing in /settings",
        SERVE,
    )
    jitters: int = _opt(DetectOptions.jitters, "descriptor jitters for a user's photo (each costs a pass)", SERVE)
    detect_max_side: int = _opt(DetectOptions.detect_max_side, "long side (px) the face detector tries first", SERVE)
    max_faces: int = _opt(DetectOptions.max_faces, "most faces described and answered in one photo", SERVE)
    workers: int = _opt(
        len(os.sched_getaffinity(0)),
        "face worker processes (default: the cores this process may use)",
        ("bot", "build"),
    )
    # --- the bot
    token: str = _opt("", "bot token from @BotFather", ("bot",), env="TELEGRAM_TOKEN")
    base_url: str = _opt("https://api.telegram.org/bot", "Bot API base URL (a local Bot API server, tests)", ("bot",))
    base_file_url: str = _opt("https://api.telegram.org/file/bot", "Bot API file download base URL", ("bot",))
    webhook_url: str = _opt("", "public HTTPS URL Telegram posts updates to; empty: long polling", ("bot",))
    listen: str = _opt("127.0.0.1", "address the webhook server binds (put a reverse proxy in front)", ("bot",))
    port: int = _opt(8443, "port the webhook server binds", ("bot",))
    webhook_secret: str = _opt("", "secret Telegram must send with each webhook call (default: random)", ("bot",))
    api_timeout: float = _opt(30.0, "seconds to wait for the Bot API before a request counts as timed out", ("bot",))
    reply_deadline: float = _opt(120.0, "seconds an answer is retried while the Bot API is unreachable", ("bot",))
    photo_memory_mb: int = _opt(96, "megabytes of users' photos held in memory at once; beyond it: 'busy'", ("bot",))
    queue_size: int = _opt(16, "photos waiting for a worker before users are told the bot is busy", ("bot",))
    photos_per_minute: int = _opt(6, "photos one user may send per minute", ("bot",))
    feedback_db: Path = _opt(Path("feedback.sqlite3"), "SQLite file for 👍/👎 votes and stats", ("bot",))
    link_template: str = _opt(
        "https://en.wikipedia.org/wiki/{alias}", "link for a celebrity with an alias ('' for none)", ("bot",)
    )
    admin_ids: str = _opt("", "comma-separated Telegram user ids allowed to use /stats", ("bot",))
    metrics_port: int = _opt(0, "serve /healthz and /metrics on this port in polling mode (0: off)", ("bot",))
    log_format: str = _opt("text", "log format: text or json", EVERY)
    log_level: str = _opt("INFO", "log level", EVERY)

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
        if self.log_format not in ("text", "json"):
            raise ValueError(f"log_format: one of text, json, got {self.log_format!r}")
        if self.match_sex not in MATCH_SEX_CHOICES:
            raise ValueError(f"match_sex: one of {', '.join(MATCH_SEX_CHOICES)}, got {self.match_sex!r}")
        for name in ("workers", "top_k", "max_faces", "photos_per_minute", "hnsw_m", "ef_construction"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be at least 1, got {getattr(self, name)}")
        for name in ("catalog_jitters", "jitters", "ef_search", "queue_size"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: must be 0 or more, got {getattr(self, name)}")

    @property
    def admins(self) -> frozenset[int]:
        return frozenset(int(x) for x in self.admin_ids.replace(" ", "").split(",") if x)

    @property
    def detect(self) -> DetectOptions:
        """How a user's photo is searched for faces and described."""
        return DetectOptions(self.detect_max_side, jitters=self.jitters, max_faces=self.max_faces)

    @property
    def hnsw(self) -> HnswParams:
        """The index parameters a build uses (``ef_search`` 0: the default saved with the index)."""
        return HnswParams(self.hnsw_m, self.ef_construction, self.ef_search or HnswParams.ef_search)

    def with_default_catalog(self) -> Settings:
        """The shipped default catalog instead of ``photos/`` and ``assets/`` when the operator has none of their own.

        Used only when both folders are at their defaults, ``photos/`` holds no image and ``assets/`` no built
        catalog: an operator's own photos or assets always win, and the two catalogs never share an assets folder.
        """
        if (self.photos, self.assets) != (Path("photos"), Path("assets")):
            return self
        if _has_images(self.photos) or (self.assets / CATALOG_FILE).exists():
            return self
        return dataclasses.replace(self, photos=DEFAULT_CATALOG / "photos", assets=DEFAULT_CATALOG / "assets")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then the environment, then ``overrides``."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if (name := env_name(f)) in env:
                values[f.name] = _convert(f, env[name])
        values.update(overrides)
        return cls(**values)


def env_name(f: dataclasses.Field) -> str:
    return f.metadata.get("env") or f"LOOKALIKE_{f.name.upper()}"


def _convert(f: dataclasses.Field, raw: str) -> Any:
    """An environment string as the field's type: ``1``/``true``/``yes`` for booleans."""
    if isinstance(f.default, bool):
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if isinstance(f.default, Path):
        return Path(raw)
    try:
        return type(f.default)(raw)
    except ValueError:
        raise ValueError(f"{env_name(f)}: expected {type(f.default).__name__}, got {raw!r}") from None


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    """Add ``--flag`` for each setting ``command`` takes; defaults stay None so the environment can fill them in."""
    for f in dataclasses.fields(Settings):
        if command not in f.metadata["commands"]:
            continue
        shown = "(secret)" if f.name in SECRETS else str(f.default)
        help = f"{f.metadata['help']} [env {env_name(f)}; default {shown}]".replace("%", "%%")
        flag = "--" + f.name.replace("_", "-")
        if isinstance(f.default, bool):
            parser.add_argument(flag, action="store_true", default=None, help=help)
        else:
            kind = Path if isinstance(f.default, Path) else type(f.default)
            parser.add_argument(flag, type=kind, default=None, help=help)


def from_namespace(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> Settings:
    """Settings from parsed flags (those given) on top of the environment."""
    names = {f.name for f in dataclasses.fields(Settings)}
    return Settings.from_env(env, **{k: v for k, v in vars(args).items() if v is not None and k in names})


def _has_images(folder: Path) -> bool:
    return folder.is_dir() and any(p.suffix.lower() in IMAGE_SUFFIXES for p in folder.rglob("*") if p.is_file())
