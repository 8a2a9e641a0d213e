"""dlib, loaded with its BLAS set up for speed: the one place the package imports it.

A dlib compiled against OpenBLAS (``make dlib-fast``, the Docker image) runs its ResNet descriptor through OpenBLAS,
which reads two settings once, when it is loaded with dlib:

- ``OPENBLAS_CORETYPE``: Debian bookworm's OpenBLAS 0.3.21 does not know CPUs newer than itself and falls back to its
  slowest kernels ("Prescott", SSE3), making the descriptor several times slower. Where the CPU has AVX2 and FMA we
  name the kernels: SkylakeX where it also has the AVX-512 subsets those kernels use, else Haswell.
- ``OPENBLAS_NUM_THREADS``: every process that describes faces (a bot worker, a build worker, a Dask worker, the CLI)
  runs one photo on one core; OpenBLAS's own threads would only fight the other processes for the same cores.

Both are set here, just before dlib loads, and only where the operator left them unset: an operator's choice wins,
nothing needs exporting, and numpy (loaded earlier, with an OpenBLAS of its own that knows the CPU) is left alone.
The figures are in bench/RESULTS.md, "dlib builds". The prebuilt dlib-bin wheel does not use OpenBLAS: for it these
settings change nothing.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")
SKYLAKEX_FLAGS = frozenset({"avx512f", "avx512bw", "avx512dq", "avx512vl", "avx2", "fma"})
HASWELL_FLAGS = frozenset({"avx2", "fma"})


def cpu_flags(cpuinfo: Path = CPUINFO) -> frozenset[str]:
    """The instruction-set flags of the first CPU (empty where /proc/cpuinfo is not there or says nothing)."""
    try:
        text = cpuinfo.read_text(encoding="ascii", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


def openblas_settings(environ: MutableMapping[str, str], flags: frozenset[str]) -> dict[str, str]:
    """Set what the operator left unset (see the module docstring) and return what was set."""
    chosen = {"OPENBLAS_NUM_THREADS": "1"}
    if SKYLAKEX_FLAGS <= flags:
        chosen["OPENBLAS_CORETYPE"] = "SkylakeX"
    elif HASWELL_FLAGS <= flags:
        chosen["OPENBLAS_CORETYPE"] = "Haswell"
    new = {name: value for name, value in chosen.items() if not environ.get(name)}
    environ.update(new)
    return new


openblas_settings(os.environ, cpu_flags())

import dlib  # noqa: E402  (after the settings above: OpenBLAS reads them once, when dlib loads it)

__all__ = ["dlib"]
