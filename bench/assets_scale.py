"""Assets at a million photos (issue 10, part 3): the catalog's asset format at 100k and 1M synthetic photos.

Two formats, each measured with its own code in its own checkout:

- ``old`` (commit 9944365, a git worktree at /tmp/lookalike-old): ``embeddings.json`` (every person, photo and skip),
  ``embeddings.npz`` (vectors), one thumbnail file per photo in ``thumbs/``;
- ``new`` (this checkout): ``catalog.sqlite3`` (persons, photos, skips), ``embeddings.npz``, ``thumbs.sqlite3``.

One synthetic catalog per size, shared by both formats (``<work>/<size>/photos``, made once and reused): vectors
shaped like real descriptors (``bench/index_scale.py``'s ``synthesize``, 10 photos per person, persons
``p0123456`` named "Person 0123456" by a ``catalog.json``), and for each photo a file that is one of ~270 real
160 px face crops (from ``../shared/faces``) plus unique trailing bytes (after the JPEG's end marker, which decoders
ignore), so that every file has its own SHA-256. Each format's store is then written from it by that checkout's
own ``CatalogData.save`` (the ``generate`` subcommand, run with the checkout on ``sys.path``), as if every photo had been
described at ``--catalog-jitters 10``.

Then, each in a fresh process, wall time and peak RSS (``ru_maxrss`` from ``os.wait4``, and the sampled RSS of the
process and its children): ``build_embeddings.py`` with nothing changed (it reads and hashes every file), the same
after adding one real LFW person (~12 photos, a symlink in ``photos/``, removed at the end), ``build_index.py``
(once per format and size: at 1M its HNSW build is ~10 min of 2 cores; it also serves as the index half of
"add one person"), ``python -m lookalike match`` on one selfie, ``bot.py`` against the fake Bot API from process
start to its first getUpdates (RSS of the process tree then), one photo → card, SIGTERM; a ``probe`` of what
start-up spends its time on; and the assets folder's bytes and files.

    python bench/assets_scale.py --format old --sizes 100000 1000000     # results in <work>/results-old-<size>.json
    python bench/assets_scale.py --format new --sizes 100000
    python bench/assets_scale.py --report                                # both formats side by side
    python bench/assets_scale.py --format old --sizes 1000000 --redo serve   # some steps again, same assets

Each command runs under an address-space limit of 85% of RAM (a MemoryError, not the kernel's OOM killer choosing
a victim on a shared machine) and a timeout (25 min: reported as "> 25 min (killed)"). If ``build_index.py`` fails
(the old checkout's at 1M: its recall check's exact search takes 1024 queries × 1M rows at a time, > 21 GB), the
same ``build_index()`` runs again with that search in blocks of 64 queries (the ``index`` subcommand), so that the
CLI and the bot can still be measured; tables show it as a workaround, never as build_index.py's time.

Targets at 1M (2 cores): bot start-up ≤ 10 s and RSS ≤ 3 GB (index included); adding one person (build_embeddings +
build_index) ≤ 15 min; the assets folder holds a handful of files. Never writes into the repository or ../shared.
"""

from __future__ import annotations

import argparse
import calendar
import hashlib
import json
import os
import platform
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("LOOKALIKE_SHARED", ROOT.parent / "shared"))
FACES = SHARED / "faces"
LFW = SHARED / "lfw"
OLD_COMMIT = "9944365"  # the last commit with embeddings.json and a thumbnail file per photo
OLD_CHECKOUT = Path("/tmp/lookalike-old")
WORK = Path("/tmp/lookalike-scale")
PHOTOS_PER_PERSON = 10  # as bench/index_scale.py's synthesize
CROP_SIDE = 160
ADDED_PERSON = "Harrison_Ford"  # 12 photos in ../shared/lfw
SELFIE = FACES / "obama" / "2.jpg"
TIMEOUT = 25 * 60.0  # s per command: beyond it the command is killed and reported as such
SAMPLE_EVERY = 0.25  # s between RSS samples of a running command's process tree
BOT_CHAT = 777
GB = 1e9
TARGETS = {"startup_s": 10.0, "rss_bytes": 3e9, "add_person_s": 15 * 60.0}
Step = Callable[[str, Callable[[], Any], str], None]  # (title, measurement, key in the results)
HERE = str(Path(__file__).resolve())
LOWMEM_BLOCK = 64  # queries per block of the exact search, when build_index.py's 1024 do not fit in memory

# ------------------------------------------------------------------------------------------------ the catalog


def checkout_of(fmt: str, old_checkout: Path) -> Path:
    """Where ``fmt``'s code lives: this checkout for ``new``, a worktree of OLD_COMMIT for ``old`` (made if absent)."""
    if fmt == "new":
        return ROOT
    if not (old_checkout / "lookalike" / "assets.py").is_file():
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(old_checkout), OLD_COMMIT], check=True
        )
    return old_checkout


def child_env(checkout: Path, work: Path) -> dict[str, str]:
    """The environment of every measured command: that checkout's code first, ../shared where it really is."""
    return {
        **os.environ,
        "PYTHONPATH": str(checkout),
        "LOOKALIKE_SHARED": str(SHARED),
        "LOOKALIKE_BENCH_TMP": str(work / "bench-tmp"),  # bench/common.py's dev catalog (synthesize's anchors)
    }


def ensure_crops(work: Path) -> list[Path]:
    """~270 small real JPEGs, made once: a centred square of each ../shared/faces JPEG at CROP_SIDE px."""
    from PIL import Image, ImageOps

    crops = work / "crops"
    done = crops / "done"
    if not done.exists():
        shutil.rmtree(crops, ignore_errors=True)
        crops.mkdir(parents=True)
        for n, source in enumerate(sorted(FACES.glob("*/*.jpg"))):
            with Image.open(source) as im:
                im = ImageOps.exif_transpose(im).convert("RGB")
                side = min(im.size)
                left, top = (im.width - side) // 2, max(0, (im.height - side) // 3)  # faces sit above the middle
                square = im.crop((left, top, left + side, top + side)).resize((CROP_SIDE, CROP_SIDE), Image.LANCZOS)
                square.save(crops / f"{n:03d}.jpg", "JPEG", quality=85)
        done.write_text("")
    return sorted(crops.glob("*.jpg"))


def ensure_photos(n: int, base: Path, crops: list[Path], checkout: Path, work: Path, timeout: float) -> dict[str, Any]:
    """``<base>/photos`` (a folder per person, ``catalog.json``) and ``<base>/synthetic.npz`` (vectors in store
    order, each file's SHA-256 and crop), made once per size and reused by both formats."""
    manifest = base / "synthetic.npz"
    photos = base / "photos"
    if manifest.exists() and photos.is_dir():
        return {"reused": True}
    if n % PHOTOS_PER_PERSON:
        raise SystemExit(f"--sizes: {n} is not a multiple of {PHOTOS_PER_PERSON} photos per person")
    shutil.rmtree(photos, ignore_errors=True)
    base.mkdir(parents=True, exist_ok=True)
    raw = base / "synthesized.npy"
    synth = measured(
        [sys.executable, str(Path(__file__).resolve()), "synth", "--n", str(n), "--out", str(raw)],
        checkout,
        child_env(checkout, work),
        base / "logs-synthesize",
        timeout,
    )
    if synth["returncode"] != 0:
        raise SystemExit(f"synthesize failed: see {base / 'logs-synthesize'}")
    started = time.perf_counter()
    n_persons = n // PHOTOS_PER_PERSON
    # synthesize gives photo i to person i % n_persons; the store lists person by person, photos 0..9 in order
    vectors = np.load(raw).reshape(PHOTOS_PER_PERSON, n_persons, 128).transpose(1, 0, 2).reshape(n, 128)
    jpegs = [c.read_bytes() for c in crops]
    crop_of = np.random.default_rng(n).integers(len(jpegs), size=n).astype(np.int16)
    digests = np.empty(n, dtype="S64")
    photos.mkdir(parents=True)
    for row in range(n):
        person, k = divmod(row, PHOTOS_PER_PERSON)
        pid = f"p{person:07d}"
        folder = photos / pid
        if k == 0:
            folder.mkdir()
        data = jpegs[crop_of[row]] + f"\nlookalike synthetic photo {pid}/{k} of {n}\n".encode()
        (folder / f"{k}.jpg").write_bytes(data)
        digests[row] = hashlib.sha256(data).hexdigest().encode()
    entries = [{"name": f"Person {p:07d}", "alias": f"p{p:07d}"} for p in range(n_persons)]
    (photos / "catalog.json").write_text(json.dumps(entries), encoding="utf-8")
    np.savez(base / "synthetic.tmp.npz", vectors=vectors.astype(np.float32), sha256=digests, crop=crop_of)
    os.replace(base / "synthetic.tmp.npz", manifest)  # last: its presence says the photos are complete
    raw.unlink()
    return {"reused": False, "synthesize_s": synth["seconds"], "files_s": time.perf_counter() - started}


# ------------------------------------------------------------------------------------------- measuring commands


def tree_rss(pid: int) -> int:
    from testkit.procs import tree_rss as rss

    return rss(pid)


def measured(command: Sequence[str], cwd: Path, env: dict[str, str], logs: Path, timeout: float) -> dict[str, Any]:
    """Run ``command`` in a session of its own; wall time, its own peak RSS (``ru_maxrss``), the peak of its and
    its children's RSS sampled every SAMPLE_EVERY s; killed (the whole session) after ``timeout`` s."""
    logs.mkdir(parents=True, exist_ok=True)
    with (logs / "stdout.txt").open("wb") as out, (logs / "stderr.txt").open("wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            list(command),
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=err,
            start_new_session=True,
            preexec_fn=_limit_memory,
        )
        peak_tree, killed = 0, False
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            peak_tree = max(peak_tree, tree_rss(proc.pid))
            if not killed and time.perf_counter() - started > timeout:
                os.killpg(proc.pid, signal.SIGKILL)  # the command and its workers: the session we started
                killed = True
            time.sleep(SAMPLE_EVERY)
        seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if _session_alive(proc.pid):  # a worker outliving its parent: ours, end it
        os.killpg(proc.pid, signal.SIGKILL)
    stdout = (logs / "stdout.txt").read_text(errors="replace")
    stderr = (logs / "stderr.txt").read_text(errors="replace")
    oom = not killed and (
        (proc.returncode == -signal.SIGKILL and _oom_killed(proc.pid))
        or (proc.returncode != 0 and "MemoryError" in stderr[-5000:])
    )
    return {
        "command": [str(c) for c in command],
        "cwd": str(cwd),
        "seconds": seconds,
        "returncode": None if killed else proc.returncode,
        "killed": killed,
        "oom_killed": oom,
        "timeout_s": timeout,
        "address_space_limit": memory_limit(),
        "peak_rss": usage.ru_maxrss * 1024,
        "peak_tree_rss": max(peak_tree, usage.ru_maxrss * 1024),
        "stdout_tail": stdout.splitlines()[-8:],
        "stderr_tail": [line[-300:] for line in stderr.replace("\r", "\n").splitlines() if line.strip()][-8:],
    }


def memory_limit() -> int:
    """Address space allowed to each measured command: 85% of the machine's memory. On a shared machine a command
    that wants more (build_index.py at 1M) gets a MemoryError instead of sending the kernel's OOM killer after
    whichever process it picks."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return int(total * 0.85)


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory_limit(), memory_limit()))


def _oom_killed(pid: int) -> bool:
    """Did the kernel's OOM killer end ``pid``? (Its log line names the pid.)"""
    found = subprocess.run(["dmesg"], capture_output=True, text=True)
    return f"Killed process {pid} " in found.stdout


def _session_alive(sid: int) -> bool:
    try:
        os.killpg(sid, 0)
        return True
    except OSError:
        return False


def help_lists(checkout: Path, env: dict[str, str], command: Sequence[str], flag: str) -> bool:
    """Does ``command --help`` in ``checkout`` list ``flag``? (Flags differ between the formats' checkouts.)"""
    found = subprocess.run([*command, "--help"], cwd=checkout, env=env, capture_output=True, text=True, timeout=120)
    return re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", found.stdout) is not None


def disk_usage(assets: Path) -> dict[str, Any]:
    """``du`` bytes on disk, files at the top level and in all, and each top-level entry's share."""

    def du(path: Path) -> int:
        return int(subprocess.run(["du", "-s", "-B1", str(path)], capture_output=True, text=True).stdout.split()[0])

    entries = []
    for entry in sorted(assets.iterdir()):
        files = sum(len(f) for _, _, f in os.walk(entry)) if entry.is_dir() else 1
        entries.append({"name": entry.name + ("/" if entry.is_dir() else ""), "bytes": du(entry), "files": files})
    return {
        "bytes": du(assets),
        "top_level": len(entries),
        "files": sum(e["files"] for e in entries),
        "entries": entries,
    }


def bot_startup(
    checkout: Path, assets: Path, photos: Path, logs: Path, env: dict[str, str], timeout: float
) -> dict[str, Any]:
    """``bot.py`` (2 workers) against the fake Bot API: seconds from process start to its "ready" log line and to
    its first getUpdates, RSS of the process tree then, one selfie → card, SIGTERM."""
    from testkit.fake_bot_api import FakeBotApi, WaitTimeout
    from testkit.procs import peak_rss, rss_bytes, spawn_workers
    from testkit.running import BotProcess

    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True)
    flags = ["--photos", str(photos)] if help_lists(checkout, env, [sys.executable, "bot.py"], "--photos") else []
    result: dict[str, Any] = {"flags": flags, "workers": 2}
    with FakeBotApi() as api:
        wall_start = time.time()
        started = time.perf_counter()
        bot = BotProcess(api, assets, logs, *flags, workers=2, root=checkout, env=env)
        try:
            peak_tree = 0
            while True:
                try:
                    api.wait_for_poller(timeout=SAMPLE_EVERY)
                    break
                except WaitTimeout:
                    pass
                peak_tree = max(peak_tree, bot.rss())
                if bot.process.poll() is not None:
                    result.update(error=f"bot.py exited {bot.process.returncode} before polling", log=_tail(bot))
                    return result
                if time.perf_counter() - started > timeout:
                    result.update(error=f"not polling after {timeout:.0f} s (killed)", killed=True, log=_tail(bot))
                    return result
            result["startup_s"] = time.perf_counter() - started
            pid = bot.process.pid
            result["rss_ready"] = bot.rss()
            result["main_rss_ready"] = rss_bytes(pid)
            result["workers_rss_ready"] = [rss_bytes(w) for w in spawn_workers(pid)]
            result["main_peak_rss_ready"] = peak_rss(pid)
            result["peak_tree_rss_startup"] = max(peak_tree, result["rss_ready"])
            result["ready_log_s"] = _log_seconds(bot.log_text(), " ready", wall_start)
            sent = time.perf_counter()
            api.send_photo(BOT_CHAT, SELFIE.read_bytes())
            try:
                [card] = api.wait_for_sent(chat_id=BOT_CHAT, method="sendPhoto", timeout=300)
                result["card_s"] = time.perf_counter() - sent
                result["caption"] = (card.message or {}).get("caption", "")
            except WaitTimeout as exc:
                result["card_error"] = str(exc)[:500]
            result["rss_after_card"] = bot.rss()
            result["main_peak_rss"] = peak_rss(pid)
            stopping = time.perf_counter()
            result["exit_code"] = bot.stop(timeout=180)
            result["stop_s"] = time.perf_counter() - stopping
        finally:
            if bot.process.poll() is None:
                bot.kill()
    return result


def _tail(bot: Any) -> list[str]:
    return bot.log_text().splitlines()[-8:]


def _log_seconds(log: str, marker: str, wall_start: float) -> float | None:
    """Seconds from ``wall_start`` to the first log line containing ``marker`` (its UTC timestamp, ms)."""
    for line in log.splitlines():
        if marker in line and line[:4].isdigit():
            stamp, millis = line.split(" ", 1)[0].rstrip("Z").split(".")
            when = calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%S")) + int(millis) / 1000
            return when - wall_start
    return None


# ----------------------------------------------------------------------------------------------- one run


GROUPS = {  # what ``--redo`` can measure again, and the result keys each group writes
    "builds": ("build_unchanged", "build_added"),
    "index": ("build_index", "build_index_lowmem"),
    "lowmem": ("build_index_lowmem",),  # only the workaround, keeping build_index.py's failed attempt
    "serve": ("cli_match", "bot", "probe", "disk"),
}


def run_one(fmt: str, n: int, work: Path, checkout: Path, timeout: float, redo: Sequence[str] = ()) -> dict[str, Any]:
    """Every measurement of one format at one size, in order; the results also go to <work>/results-FMT-N.json.

    With ``redo``, only those groups, on the assets an earlier run left (its other numbers stay; what is replaced
    is kept under ``redone``): for a step ended from outside, or one that failed and has been worked around."""
    base = work / str(n)
    photos, assets, logs = base / "photos", base / f"assets-{fmt}", base / f"logs-{fmt}"
    env = child_env(checkout, work)
    if redo:
        result = json.loads((work / f"results-{fmt}-{n}.json").read_text(encoding="utf-8"))
        replaced = {key: result.pop(key, None) for group in redo for key in GROUPS[group]}
        result.setdefault("redone", []).append({"at": time.strftime("%Y-%m-%d %H:%M:%S"), "before": replaced})
        step = _stepper(result, work, fmt, n)
    else:
        result = {
            "format": fmt,
            "size": n,
            "persons": n // PHOTOS_PER_PERSON,
            "checkout": str(checkout),
            "commit": _git_head(checkout),
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
            "timeout_s": timeout,
        }
        step = _stepper(result, work, fmt, n)
        crops = ensure_crops(work)
        step("synthetic photos", lambda: ensure_photos(n, base, crops, checkout, work, timeout), "photos")
        shutil.rmtree(assets, ignore_errors=True)
        shutil.rmtree(logs, ignore_errors=True)
        generate = [sys.executable, HERE, "generate", "--format", fmt, "--manifest", str(base / "synthetic.npz")]
        generate += ["--crops", str(work / "crops"), "--assets", str(assets)]
        step("write the store", lambda: measured(generate, checkout, env, logs / "generate", timeout), "generate")
    try:
        if not redo or "builds" in redo:
            measure_builds(result, step, base, fmt, checkout, env, timeout)
        if not redo or "index" in redo or "lowmem" in redo:
            measure_index(
                result, step, assets, logs, checkout, env, timeout, only_lowmem=bool(redo) and "index" not in redo
            )
        if not redo or "serve" in redo:
            measure_serving(step, photos, assets, logs, checkout, env, timeout)
    finally:
        (photos / ADDED_PERSON).unlink(missing_ok=True)  # the next format starts from the same photos
    result["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    _save(result, work, fmt, n)
    return result


def measure_builds(
    result: dict[str, Any], step: Step, base: Path, fmt: str, checkout: Path, env: dict[str, str], timeout: float
) -> None:
    """``build_embeddings.py`` with nothing changed, then (if that finished) with one LFW person added as a symlink
    in ``photos/``, which stays there: the caller removes it when it is done with the assets."""
    photos, assets, logs = base / "photos", base / f"assets-{fmt}", base / f"logs-{fmt}"
    build = [sys.executable, "build_embeddings.py", "--photos", str(photos), "--assets", str(assets), "--workers", "2"]
    added = photos / ADDED_PERSON
    added.unlink(missing_ok=True)
    step(
        "build, nothing changed",
        lambda: measured(build, checkout, env, logs / "build-unchanged", timeout),
        "build_unchanged",
    )
    if result["build_unchanged"].get("returncode") == 0:
        added.symlink_to(LFW / ADDED_PERSON, target_is_directory=True)
        step(
            "build, one person added",
            lambda: measured(build, checkout, env, logs / "build-added", timeout),
            "build_added",
        )
        result["build_added"]["photos_added"] = len(list((LFW / ADDED_PERSON).iterdir()))
    else:
        step(
            "build, one person added",
            lambda: {"skipped": "the build with nothing changed did not finish"},
            "build_added",
        )


def measure_index(
    result: dict[str, Any],
    step: Step,
    assets: Path,
    logs: Path,
    checkout: Path,
    env: dict[str, str],
    timeout: float,
    only_lowmem: bool = False,
) -> None:
    """``build_index.py``; if it fails (at 1M its recall check's exact search needs more memory than this machine
    has), the same ``build_index()`` with that search in blocks of LOWMEM_BLOCK queries, so that the CLI and the bot
    can still be measured — reported as a workaround, never as build_index.py's time."""
    if not only_lowmem:
        index = [sys.executable, "build_index.py", "--assets", str(assets), "--force"]
        step("build_index", lambda: measured(index, checkout, env, logs / "build-index", timeout), "build_index")
        result["build_index"]["recall"] = _recall(result["build_index"].get("stdout_tail", []))
    if result["build_index"].get("returncode") != 0:
        lowmem = [sys.executable, HERE, "index", "--assets", str(assets), "--block", str(LOWMEM_BLOCK)]
        step(
            f"build_index again, exact search in blocks of {LOWMEM_BLOCK} queries (bench workaround)",
            lambda: measured(lowmem, checkout, env, logs / "build-index-lowmem", timeout),
            "build_index_lowmem",
        )
        result["build_index_lowmem"]["recall"] = _recall(result["build_index_lowmem"].get("stdout_tail", []))


def measure_serving(
    step: Step, photos: Path, assets: Path, logs: Path, checkout: Path, env: dict[str, str], timeout: float
) -> None:
    """The CLI on one selfie, the bot's start-up and one card, the start-up probe, the assets folder."""
    py = sys.executable
    match = [py, "-m", "lookalike", "match", str(SELFIE), "--assets", str(assets)]
    if help_lists(checkout, env, [py, "-m", "lookalike", "match"], "--photos"):
        match += ["--photos", str(photos)]
    step("CLI match", lambda: measured(match, checkout, env, logs / "match", timeout), "cli_match")
    step("bot", lambda: bot_startup(checkout, assets, photos, logs / "bot", env, timeout), "bot")
    probe = [py, HERE, "probe", "--assets", str(assets)]
    step("start-up probe", lambda: _probe(measured(probe, checkout, env, logs / "probe", timeout), logs), "probe")
    step("disk", lambda: disk_usage(assets), "disk")


def _stepper(result: dict[str, Any], work: Path, fmt: str, n: int) -> Step:
    def step(title: str, run: Callable[[], Any], key: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {fmt} {n:,}: {title} …", flush=True)
        try:
            result[key] = run()
        except Exception as exc:  # one failed step is reported, the others still run
            result[key] = {"error": f"{type(exc).__name__}: {exc}"}
        print(f"[{time.strftime('%H:%M:%S')}]   {_brief(result[key])}", flush=True)
        _save(result, work, fmt, n)  # after every step: a run stopped midway keeps what it measured

    return step


def _brief(value: Any) -> str:
    if isinstance(value, dict) and "seconds" in value:
        return f"{_run_time(value)}, peak RSS {_size(value.get('peak_tree_rss'))}"
    return json.dumps(value, default=str)[:400]


def _save(result: dict[str, Any], work: Path, fmt: str, n: int) -> None:
    path = work / f"results-{fmt}-{n}.json"
    path.write_text(json.dumps(result, indent=1, default=str), encoding="utf-8")


def _git_head(checkout: Path) -> str:
    found = subprocess.run(["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(checkout), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()  # fmt: skip
    return found.stdout.strip() + (" + uncommitted changes" if dirty else "")


def _recall(lines: list[str]) -> float | None:
    for line in lines:
        if line.startswith("recall@1"):
            return float(line.rsplit(":", 1)[1])
    return None


def _probe(run: dict[str, Any], logs: Path) -> dict[str, Any]:
    """The probe's own JSON line (its timings) merged into its run record."""
    try:
        run["parts"] = json.loads((logs / "probe" / "stdout.txt").read_text().strip().splitlines()[-1])
    except (OSError, ValueError, IndexError):
        pass
    return run


# ---------------------------------------------------------------------------------- subcommands in a checkout


def synth_main(n: int, out: Path) -> None:
    """``synthesize(n)``'s vectors (photo i of person i % (n/10)), saved for the catalog's files."""
    from bench.index_scale import synthesize

    np.save(out, synthesize(n, 1).vectors.astype(np.float32))


def generate_main(fmt: str, manifest: Path, crops: Path, assets: Path) -> None:
    """Write ``assets/`` in ``fmt`` with the checkout's own ``CatalogData.save``, as if every synthetic photo had been
    described (jitters 10, the describer of that checkout), thumbnails from the real crops' bytes."""
    from lookalike import assets as assets_module
    from lookalike.assets import CatalogData, Person, PhotoRecord
    from lookalike.build.describe import DESCRIBER_VERSION

    has_thumb_field = "thumb" in PhotoRecord.__dataclass_fields__
    if has_thumb_field != (fmt == "old"):
        raise SystemExit(
            f"--format {fmt}, but this checkout's PhotoRecord {'has' if has_thumb_field else 'lacks'} thumb"
        )
    timings: dict[str, float] = {}
    started = time.perf_counter()
    with np.load(manifest, allow_pickle=False) as npz:
        vectors, digests, crop_of = npz["vectors"], npz["sha256"].astype(str).tolist(), npz["crop"]
    jpegs = [path.read_bytes() for path in sorted(crops.glob("*.jpg"))]
    n = len(digests)
    persons = {}
    photos = []
    for row, sha in enumerate(digests):
        person, k = divmod(row, PHOTOS_PER_PERSON)
        pid = f"p{person:07d}"
        if k == 0:
            persons[pid] = Person(pid, f"Person {person:07d}", alias=pid)
        extra = (f"thumbs/{sha[:20]}.jpg",) if fmt == "old" else ()
        photos.append(PhotoRecord(f"{pid}/{k}.jpg", sha, pid, (0, 0, CROP_SIDE, CROP_SIDE), 40.0, 0.0, *extra))
    timings["records_s"] = time.perf_counter() - started
    started = time.perf_counter()
    if fmt == "old":
        thumbs = assets / "thumbs"
        thumbs.mkdir(parents=True, exist_ok=True)
        for sha, crop in zip(digests, crop_of):
            (thumbs / f"{sha[:20]}.jpg").write_bytes(jpegs[crop])
    else:
        with assets_module.ThumbnailWriter(assets) as store:
            store.put_many((sha, jpegs[crop]) for sha, crop in zip(digests, crop_of))
    timings["thumbs_s"] = time.perf_counter() - started
    started = time.perf_counter()
    CatalogData(persons, photos, vectors, skipped=[], jitters=10, describer=DESCRIBER_VERSION).save(assets)
    timings["save_s"] = time.perf_counter() - started
    if fmt == "new":  # cleaning's neighbour cache, as the build that described them would have left it
        from bench.cleaning import seeded_cache

        started = time.perf_counter()
        cache = seeded_cache([p.person for p in photos], digests, vectors, PHOTOS_PER_PERSON)
        cache.save(assets / "neighbours.npz", f"jitters 10; {DESCRIBER_VERSION}")
        timings["neighbours_s"] = time.perf_counter() - started
    print(json.dumps({"photos": n, "persons": len(persons), **timings}))


def index_main(assets: Path, block: int) -> None:
    """``build_index()`` of this checkout as build_index.py runs it (``--force``), but with its recall check's exact
    search in blocks of ``block`` queries: at 1M the default 1024 need ~20 GB (distances and int64 ranks of 1024
    queries × 1M rows, several times over), more than this machine has."""
    from lookalike.build.build_index import build_index
    from lookalike.engine import hnsw

    exact = hnsw.exact_knn
    hnsw.exact_knn = lambda vectors, queries, k, _block=block: exact(vectors, queries, k, _block)
    report = build_index(assets, force=True)
    print(f"{report.photos} photos of {report.persons} persons indexed in {report.build_seconds:.2f} s")
    print(f"recall@1 of HNSW against exact search: {report.recall:.4f}")
    print(json.dumps({"hnsw_s": report.build_seconds, "calibration_s": report.calibration_seconds}))


def probe_main(assets: Path) -> None:
    """What start-up spends its time on, part by part, in this checkout: imports, the catalog, the index."""
    parts: dict[str, Any] = {}

    def rss() -> int:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def timed(key: str, func: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        value = func()
        parts[key + "_s"] = time.perf_counter() - started
        parts[key + "_peak_rss"] = rss()
        return value

    timed("import", lambda: __import__("lookalike.telegram.app"))
    from lookalike import assets as assets_module
    from lookalike.engine.hnsw import HnswIndex

    if hasattr(assets_module, "CatalogReader"):  # the SQLite catalog: counts and person numbers, rows on demand
        catalog = timed("catalog", lambda: assets_module.CatalogReader(assets))
        timed("check_thumbs", catalog.check_thumbs)
    else:  # format 1: every person and photo as objects, thumbnails listed
        store = timed("catalog", lambda: assets_module.CatalogData.load(assets))
        timed("fingerprint", store.fingerprint)
        timed("check_thumbs", lambda: store.check_thumbs(assets))
    timed("index", lambda: HnswIndex.load(assets))
    print(json.dumps(parts))


# ----------------------------------------------------------------------------------------------- tables


def _size(value: float | None) -> str:
    if value is None:
        return "–"
    if value >= GB:
        return f"{value / GB:.2f} GB"
    return f"{value / 1e6:.0f} MB" if value >= 1e6 else f"{value / 1e3:.0f} kB"


def _secs(value: float | None) -> str:
    if value is None:
        return "–"
    if value < 120:
        return f"{value:.2f} s" if value < 1 else f"{value:.1f} s"
    return f"{value:.0f} s ({value / 60:.1f} min)"


def _run_time(run: dict[str, Any] | None) -> str:
    if not run:
        return "–"
    if run.get("skipped"):
        return "not run"
    if run.get("error"):
        return "error"
    if run.get("killed"):
        return f"> {run['timeout_s'] / 60:.0f} min (killed)"
    if run.get("oom_killed"):
        return f"out of memory after {_secs(run['seconds'])}"
    if run.get("returncode") == -signal.SIGTERM:
        return f"ended by a SIGTERM from outside after {_secs(run['seconds'])}"
    if run.get("returncode"):
        return f"failed (exit {run['returncode']}) after {_secs(run['seconds'])}"
    return _secs(run.get("seconds"))


def _mark(ok: bool | None) -> str:
    return "" if ok is None else (" ✓" if ok else " ✗")


def _add_person(result: dict[str, Any]) -> tuple[str, bool | None]:
    added, index = result.get("build_added") or {}, result.get("build_index") or {}
    if added.get("skipped"):
        return f"> {result['timeout_s'] / 60:.0f} min (the unchanged build alone was killed)", False
    if added.get("killed") or index.get("killed"):
        return f"> {result['timeout_s'] / 60:.0f} min (killed)", False
    if added.get("returncode") != 0:
        return "failed", None
    if index.get("returncode") != 0:
        lowmem = result.get("build_index_lowmem") or {}
        if lowmem.get("returncode") != 0:
            return "failed (build_index.py: " + _run_time(index) + ")", False
        total = added["seconds"] + lowmem["seconds"]
        return f"build_index.py fails; {_secs(total)} with the workaround index build", False
    total = added["seconds"] + index["seconds"]
    return _secs(total), total <= TARGETS["add_person_s"]


def run_table(result: dict[str, Any]) -> str:
    """One format at one size: every step with its wall time, memory and notes."""
    from bench.common import table

    bot = result.get("bot") or {}
    rows: list[list[str]] = []

    def add(what: str, run: dict[str, Any] | None, note: str = "") -> None:
        run = run or {}
        rss = _size(run.get("peak_tree_rss")) if "peak_tree_rss" in run else "–"
        rows.append([what, _run_time(run), rss, note or run.get("skipped", "") or run.get("error", "")])

    gen = result.get("generate") or {}
    gen_parts = _json_tail(gen)
    add(
        "write the synthetic store (generator; not a target)",
        gen,
        _parts_note(gen_parts, ("records_s", "thumbs_s", "save_s")),
    )
    add(
        "`build_embeddings.py --workers 2`, nothing changed",
        result.get("build_unchanged"),
        _build_note(result.get("build_unchanged")),
    )
    added = result.get("build_added") or {}
    add(
        f"… one person added ({added.get('photos_added', '~12')} LFW photos)",
        added,
        _build_note(added) if not added.get("skipped") else "not run: the unchanged build did not finish",
    )
    index = result.get("build_index") or {}
    add(
        "`build_index.py --force` (HNSW, recall, calibration)",
        index,
        f"recall@1 {index.get('recall')}" if index.get("recall") else "",
    )
    if result.get("build_index_lowmem"):
        low = result["build_index_lowmem"]
        parts = _json_tail(low)
        add(
            f"… the same `build_index()`, exact search in blocks of {LOWMEM_BLOCK} queries (bench workaround)",
            low,
            f"recall@1 {low.get('recall')}; " + _parts_note(parts, ("hnsw_s", "calibration_s")),
        )
    total, ok = _add_person(result)
    rows.append(["**add one person** (build_embeddings + build_index)", total + _mark(ok), "–", "target ≤ 15 min"])
    add("`python -m lookalike match` one selfie (load + match)", result.get("cli_match"))
    if "startup_s" in bot:
        rss_ok = bot["rss_ready"] <= TARGETS["rss_bytes"]
        rows.append(
            [
                "**bot start-up**: `bot.py` start → first getUpdates",
                _secs(bot["startup_s"]) + _mark(bot["startup_s"] <= TARGETS["startup_s"]),
                _size(bot["rss_ready"]) + _mark(rss_ok),
                f"targets ≤ 10 s, ≤ 3 GB (tree: main {_size(bot['main_rss_ready'])} + 2 workers "
                f"{_size(sum(bot['workers_rss_ready']))}); main peak during load {_size(bot['main_peak_rss_ready'])}; "
                f"'ready' log line at {_secs(bot.get('ready_log_s'))}",
            ]
        )
        rows.append(
            [
                "bot: one selfie → card",
                _secs(bot.get("card_s")) if "card_s" in bot else "no card",
                _size(bot.get("rss_after_card")),
                f"tree RSS after the card; main peak {_size(bot.get('main_peak_rss'))}; SIGTERM → exit "
                f"{bot.get('exit_code')} in {_secs(bot.get('stop_s'))}",
            ]
        )
    else:
        rows.append(["**bot start-up**", "failed", "–", str(bot.get("error", ""))[:200]])
    disk = result.get("disk") or {}
    if "bytes" in disk:
        rows.append(
            [
                "**assets folder**",
                "–",
                _size(disk["bytes"]) + " on disk",
                f"{disk['top_level']} entries at the top level, {disk['files']:,} files in all: "
                + ", ".join(
                    f"{e['name']} {_size(e['bytes'])}" + (f" ({e['files']:,} files)" if e["files"] > 1 else "")
                    for e in disk["entries"]
                ),
            ]
        )
    head = f"### {result['format']} format, {result['size']:,} photos ({result['persons']:,} persons)\n\n"
    return head + table(["step", "wall", "peak RSS", "notes"], rows) + "\n\n" + _notes(result)


def _json_tail(run: dict[str, Any]) -> dict[str, Any]:
    for line in reversed(run.get("stdout_tail") or []):
        try:
            return json.loads(line)
        except ValueError:
            continue
    return {}


def _parts_note(parts: dict[str, Any], keys: Sequence[str]) -> str:
    return ", ".join(f"{k.removesuffix('_s')} {_secs(parts[k])}" for k in keys if k in parts)


def _build_note(run: dict[str, Any] | None) -> str:
    """The build's summary line, or where its progress bar was when it ended."""
    run = run or {}
    for line in reversed(run.get("stdout_tail") or []):
        if " persons, " in line:
            return line.strip()[:160]
    if run.get("killed"):
        bars = [line for line in run.get("stderr_tail") or [] if "|" in line or "%" in line]
        return ("last progress: " + bars[-1].strip()[:120]) if bars else "killed with no progress line"
    return ""


def _notes(result: dict[str, Any]) -> str:
    """What a reader must know about this run's numbers: skipped, killed, how things were measured."""
    notes = [
        "Wall time and peak RSS of each command in a fresh process (peak RSS: the command and its worker "
        "processes, sampled every 0.25 s, or its own `ru_maxrss` if higher); page cache warm (the photos were just "
        "written); 2 cores shared with other work; each command limited to "
        f"{_size(memory_limit())} of address space (85% of RAM: a "
        "MemoryError rather than the kernel's OOM killer on a shared machine).",
    ]
    for key, what in (("build_unchanged", "the build with nothing changed"), ("build_added", "the build after adding a person"),  # noqa: E501
                      ("build_index", "build_index.py"), ("build_index_lowmem", "the workaround index build"),
                      ("cli_match", "the CLI match")):  # fmt: skip
        run = result.get(key) or {}
        if run.get("killed"):
            notes.append(f"{what} was killed after {run['timeout_s'] / 60:.0f} min.")
        elif run.get("skipped"):
            notes.append(f"{what} was not run: {run['skipped']}.")
        elif run.get("oom_killed"):
            how = "a MemoryError" if run.get("returncode") == 1 else "killed by the kernel's OOM killer"
            notes.append(
                f"{what} ran out of memory ({how}, peak RSS {_size(run.get('peak_rss'))}) "
                f"after {_secs(run['seconds'])}."
            )
        elif run.get("returncode"):
            notes.append(f"{what} failed (exit {run['returncode']}): {' / '.join(run.get('stderr_tail', [])[-2:])}")
    for redo in result.get("redone", []):
        before = "; ".join(
            f"{k}: {_run_time(v)}" for k, v in redo["before"].items() if isinstance(v, dict) and "seconds" in v
        )
        notes.append(
            f"Measured again at {redo['at']} on the same assets; the first attempt: {before}."
            if before
            else f"Steps added at {redo['at']} on the same assets."
        )
    notes.append(
        "`build_index.py` ran once per format and size, after the person was added (at 1M its HNSW build is "
        "~10 min of both cores); `--force` so that an index at recall@1 < 0.99 is still saved for the bot."
    )
    notes += result.get("remarks", [])
    parts = (result.get("probe") or {}).get("parts") or {}
    if parts:
        notes.append(
            "Start-up parts (`probe`, one process, same code): "
            + ", ".join(
                f"{k.removesuffix('_s')} {_secs(v)} (peak RSS {_size(parts.get(k.removesuffix('_s') + '_peak_rss'))})"
                for k, v in parts.items()
                if k.endswith("_s")
            )
            + "."
        )
    return "\n".join(f"- {n}" for n in notes)


def report(work: Path) -> str:
    """Every result in ``work``, side by side: one column per format and size."""
    from bench.common import table

    found = []
    for path in work.glob("results-*-*.json"):
        result = json.loads(path.read_text(encoding="utf-8"))
        found.append(result)
    if not found:
        raise SystemExit(f"no results in {work}: run --format old|new --sizes … first")
    found.sort(key=lambda r: (r["size"], r["format"] != "old"))
    header = ["", *(f"{r['format']} {r['size']:,}" for r in found)]

    def row(label: str, cell: Callable[[dict[str, Any]], str]) -> list[str]:
        cells = []
        for r in found:
            try:
                cells.append(cell(r))
            except (KeyError, TypeError, ValueError):
                cells.append("–")
        return [label, *cells]

    def bot(r: dict[str, Any]) -> dict[str, Any]:
        return r.get("bot") or {}

    def part(r: dict[str, Any], key: str) -> str:
        return _secs((r.get("probe") or {}).get("parts", {}).get(key))

    rows = [
        row(
            "bot start → first getUpdates (≤ 10 s)",
            lambda r: _secs(bot(r)["startup_s"]) + _mark(bot(r)["startup_s"] <= 10),
        ),
        row(
            "bot RSS once ready, process tree (≤ 3 GB)",
            lambda r: _size(bot(r)["rss_ready"]) + _mark(bot(r)["rss_ready"] <= 3e9),
        ),
        row("bot main process peak RSS while loading", lambda r: _size(bot(r)["main_peak_rss_ready"])),
        row("bot: selfie → card", lambda r: _secs(bot(r)["card_s"])),
        row("start-up part: catalog load", lambda r: part(r, "catalog_s")),
        row("start-up part: thumbnails check", lambda r: part(r, "check_thumbs_s")),
        row("start-up part: index load", lambda r: part(r, "index_s")),
        row("CLI match, one selfie", lambda r: _run_time(r["cli_match"])),
        row("CLI match peak RSS", lambda r: _size(r["cli_match"]["peak_tree_rss"])),
        row("build_embeddings, nothing changed", lambda r: _run_time(r["build_unchanged"])),
        row("… its peak RSS", lambda r: _size(r["build_unchanged"]["peak_tree_rss"])),
        row("build_embeddings, one person added", lambda r: _run_time(r["build_added"])),
        row("build_index", lambda r: _run_time(r["build_index"])),
        row("build_index peak RSS", lambda r: _size(r["build_index"]["peak_tree_rss"])),
        row(
            f"build_index, exact search in blocks of {LOWMEM_BLOCK} (workaround)",
            lambda r: _run_time(r["build_index_lowmem"]) + f", {_size(r['build_index_lowmem']['peak_tree_rss'])}",
        ),
        row("**add one person**, total (≤ 15 min)", lambda r: (lambda t, ok: t + _mark(ok))(*_add_person(r))),
        row("assets on disk", lambda r: _size(r["disk"]["bytes"])),
        row("assets: top-level entries / files in all", lambda r: f"{r['disk']['top_level']} / {r['disk']['files']:,}"),
    ]
    notes = [f"- {r['format']} {r['size']:,}: commit {r.get('commit')}, run {r.get('started')}" for r in found]
    return "## Assets at scale\n\n" + table(header, rows) + "\n\n" + "\n".join(notes)


# ------------------------------------------------------------------------------------------------------ main


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("synth", "generate", "index", "probe"):
        return subcommand(argv)
    if str(ROOT) not in sys.path:  # `python bench/assets_scale.py` puts bench/ first; testkit lives at the root
        sys.path.insert(0, str(ROOT))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--format", choices=("old", "new"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--work", type=Path, default=WORK, help="where catalogs, logs and results go (not the repo)")
    parser.add_argument("--old-checkout", type=Path, default=OLD_CHECKOUT, help=f"a worktree of {OLD_COMMIT}")
    parser.add_argument("--timeout", type=float, default=TIMEOUT, help="seconds per command before it is killed")
    parser.add_argument("--report", action="store_true", help="print every result in --work side by side")
    parser.add_argument(
        "--redo",
        nargs="+",
        choices=tuple(GROUPS),
        default=[],
        help="measure only these groups again, on the assets an earlier run left (its other numbers stay)",
    )
    args = parser.parse_args(argv)
    if args.report:
        print(report(args.work))
        return 0
    if not args.format:
        parser.error("--format old|new (or --report)")
    work = args.work.resolve()
    if work == ROOT or ROOT in work.parents or SHARED.resolve() in (work, *work.parents):
        parser.error(f"--work {work}: never inside the repository or ../shared")
    work.mkdir(parents=True, exist_ok=True)
    checkout = checkout_of(args.format, args.old_checkout)
    import testkit.running  # noqa: F401  (now: this checkout's code may be mid-edit when the bot's turn comes)

    for n in args.sizes:
        result = run_one(args.format, n, work, checkout, args.timeout, args.redo)
        print("\n" + run_table(result) + "\n", flush=True)
    print(f"raw numbers: {', '.join(str(work / f'results-{args.format}-{n}.json') for n in args.sizes)}")
    return 0


def subcommand(argv: list[str]) -> int:
    """The parts that run with a format's checkout on sys.path (PYTHONPATH), never with this file's folder."""
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]  # bench/*.py must not shadow modules
    parser = argparse.ArgumentParser(prog="assets_scale.py")
    sub = parser.add_subparsers(dest="command", required=True)
    synth = sub.add_parser("synth")
    synth.add_argument("--n", type=int, required=True)
    synth.add_argument("--out", type=Path, required=True)
    generate = sub.add_parser("generate")
    generate.add_argument("--format", choices=("old", "new"), required=True)
    generate.add_argument("--manifest", type=Path, required=True)
    generate.add_argument("--crops", type=Path, required=True)
    generate.add_argument("--assets", type=Path, required=True)
    probe = sub.add_parser("probe")
    probe.add_argument("--assets", type=Path, required=True)
    index = sub.add_parser("index")
    index.add_argument("--assets", type=Path, required=True)
    index.add_argument("--block", type=int, default=LOWMEM_BLOCK)
    args = parser.parse_args(argv)
    if args.command == "synth":
        synth_main(args.n, args.out)
    elif args.command == "generate":
        generate_main(args.format, args.manifest, args.crops, args.assets)
    elif args.command == "index":
        index_main(args.assets, args.block)
    else:
        probe_main(args.assets)
    return 0


if __name__ == "__main__":
    sys.exit(main())
