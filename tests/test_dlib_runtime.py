"""OpenBLAS set up for dlib without the operator exporting anything, and never against the operator's choice."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from lookalike.engine.dlib_runtime import cpu_flags, openblas_settings

SKYLAKE = frozenset("fpu sse2 avx avx2 fma avx512f avx512dq avx512bw avx512vl".split())


def test_kernels_follow_the_cpu_and_one_thread_is_the_default() -> None:
    for flags, kernels in [(SKYLAKE, "SkylakeX"), (frozenset({"avx", "avx2", "fma"}), "Haswell")]:
        env: dict[str, str] = {}
        assert openblas_settings(env, flags) == {"OPENBLAS_NUM_THREADS": "1", "OPENBLAS_CORETYPE": kernels}
        assert env == {"OPENBLAS_NUM_THREADS": "1", "OPENBLAS_CORETYPE": kernels}
    old_cpu: dict[str, str] = {}
    assert openblas_settings(old_cpu, frozenset({"sse2", "avx"})) == {"OPENBLAS_NUM_THREADS": "1"}


def test_the_operators_settings_win() -> None:
    env = {"OPENBLAS_CORETYPE": "Zen", "OPENBLAS_NUM_THREADS": "4"}
    assert openblas_settings(env, SKYLAKE) == {}
    assert env == {"OPENBLAS_CORETYPE": "Zen", "OPENBLAS_NUM_THREADS": "4"}


def test_cpu_flags_are_read_from_cpuinfo(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu avx2 fma\n\nprocessor\t: 1\n")
    assert cpu_flags(cpuinfo) == {"fpu", "avx2", "fma"}
    assert cpu_flags(tmp_path / "missing") == frozenset()


def test_a_process_that_loads_dlib_gets_them_before_dlib_loads() -> None:
    """In a fresh interpreter with nothing exported, as the CLI, a worker or a Dask worker starts."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENBLAS_")}
    code = (
        "import os, sys; from lookalike.engine import faces; "
        "print(os.environ.get('OPENBLAS_NUM_THREADS'), os.environ.get('OPENBLAS_CORETYPE'), 'dlib' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    threads, kernels, loaded = out.split()
    expected = openblas_settings({}, cpu_flags()).get("OPENBLAS_CORETYPE", "None")
    assert (threads, kernels, loaded) == ("1", expected, "True")
