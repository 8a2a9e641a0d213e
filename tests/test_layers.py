"""The bot's main process never loads dlib: only its workers hold the models (~100 MB each, and a crash in native
code costs a worker, not the bot). The Telegram layer reaches the engine's heavy half through lookalike/engine/jobs.py
and plain data (photo.py, errors.py) alone."""

from __future__ import annotations

import importlib.util
import pkgutil
import subprocess
import sys
from pathlib import Path

import lookalike.telegram
from lookalike.telegram.texts import TEXTS
from testkit.data import ROOT, BuiltCatalog
from testkit.fake_bot_api import FakeBotApi
from testkit.procs import spawn_workers
from testkit.running import BotProcess

DLIB_LIBRARY = Path(importlib.util.find_spec("_dlib_pybind11").origin).name  # dlib's native module, as mapped

# Imports what bot.py's process imports (bot.py itself, hence lookalike.cli), then every module of the Telegram
# layer, with dlib made unimportable: the first import that reaches it fails, its traceback naming the chain.
IMPORT_WITHOUT_DLIB = """
import importlib, sys
sys.modules["dlib"] = None
for name in sys.argv[1:]:
    importlib.import_module(name)
assert "_dlib_pybind11" not in sys.modules
"""


def telegram_modules() -> list[str]:
    return [m.name for m in pkgutil.walk_packages(lookalike.telegram.__path__, "lookalike.telegram.")]


def import_without_dlib(*modules: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", IMPORT_WITHOUT_DLIB, *modules], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_the_bot_and_the_telegram_layer_import_no_dlib() -> None:
    modules = telegram_modules()
    assert {"lookalike.telegram.app", "lookalike.telegram.buttons", "lookalike.telegram.photos"} <= set(modules)
    run = import_without_dlib("bot", *modules)
    assert run.returncode == 0, run.stderr


def test_the_check_names_the_chain_that_reaches_dlib() -> None:
    run = import_without_dlib("lookalike.engine.jobs", "lookalike.engine.analysis")
    assert run.returncode == 1
    assert "lookalike/engine/analysis.py" in run.stderr and "lookalike/engine/faces.py" in run.stderr
    assert run.stderr.rstrip().endswith("import of dlib halted; None in sys.modules")


def mapped(pid: int, library: str) -> bool:
    return library in Path(f"/proc/{pid}/maps").read_text()


def test_a_served_photo_and_blend_leave_dlib_out_of_the_main_process(catalog: BuiltCatalog, tmp_path: Path) -> None:
    """Results come back pickled, and unpickling imports a result's module: a photo and a blend served end to end
    by ``python bot.py``, and dlib is mapped in its worker only."""
    with FakeBotApi() as api:
        bot = BotProcess(api, catalog.assets, tmp_path)
        try:
            api.wait_for_poller(timeout=90)
            api.send_photo(7, catalog.queries["madonna"][1].read_bytes())
            [card] = api.wait_for_sent(chat_id=7, method="sendPhoto", timeout=60)
            api.press_button(7, card.message["message_id"], text=TEXTS["en"]["blend_button"])
            [animation] = api.wait_for_sent(chat_id=7, method="sendAnimation", timeout=90)
            assert animation.upload().data[4:8] == b"ftyp"
            [worker] = spawn_workers(bot.process.pid)
            assert mapped(worker, DLIB_LIBRARY)  # the check can see dlib where it is
            assert not mapped(bot.process.pid, DLIB_LIBRARY), bot.log_text()
        finally:
            code = bot.stop()
    assert code == 0, bot.log_text()
