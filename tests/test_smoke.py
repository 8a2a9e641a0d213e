"""The container's smoke check (``python -m testkit.smoke``, run by ``make image-test``) against ``bot.py`` here:
the same code, so the check that CI cannot run in a container still runs in CI."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

from testkit.data import ROOT, BuiltCatalog
from testkit.running import BotProcess, free_port


def test_smoke_check_passes_against_a_running_bot(catalog: BuiltCatalog, tmp_path: Path) -> None:
    info, port = tmp_path / "fake.json", free_port()
    photo = catalog.queries["obama"][1]
    command = ["-m", "testkit.smoke", "--info", str(info), "--metrics-port", str(port), "--photo", str(photo)]
    smoke = subprocess.Popen(
        [sys.executable, *command, "--expect", "Barack Obama"], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 30
    while not info.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    api = SimpleNamespace(**json.loads(info.read_text()))  # what BotProcess reads of a fake: its address and token
    bot = BotProcess(api, catalog.assets, tmp_path, metrics_port=port)
    try:
        out = smoke.stdout.readline() + smoke.stdout.readline() + smoke.stdout.readline()
        assert out.startswith("/healthz 200 after") and "Barack Obama" in out and out.endswith("PASSED\n"), out
    finally:
        assert bot.stop() == 0
        info.with_suffix(".stop").touch()
        assert smoke.wait(timeout=30) == 0
