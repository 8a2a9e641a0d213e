"""RESULTS.md and its PNG plots from every part's sections (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from bench.common import BENCH

PLOTS = {
    "stages": "pipeline_stages.png",
    "index": "index_recall_latency.png",
    "throughput": "throughput_workers.png",
    "latency": "bot_latency.png",
}


def _save(fig, out: Path) -> None:
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)


def plot_stages(data: dict[str, Any], out: Path) -> bool:
    """Stacked bars of median ms per stage, ours and the article's, at each Telegram size."""
    stages = data.get("stages")
    if not stages:
        return False
    fig, ax = plt.subplots(figsize=(10, 4.5))
    labels, bottoms = [], []
    for size in sorted(stages, key=int):  # photo sizes; str keys after a JSON round trip
        for who in ("ours", "article"):
            labels.append(f"{who}\n{size}px")
            bottoms.append(stages[size][who])
    left = [0.0] * len(labels)
    for stage in (s for s in bottoms[0] if s != "total"):  # in the pipeline's order
        widths = [b[stage] * 1000 for b in bottoms]
        ax.barh(labels, widths, left=left, label=stage)
        left = [x + w for x, w in zip(left, widths)]
    ax.invert_yaxis()
    ax.set_xlabel("median ms per photo (stages stacked)")
    ax.set_title("Per-photo latency by stage: ours vs the article's pipeline")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    _save(fig, out)
    return True


def plot_index(data: dict[str, Any], out: Path) -> bool:
    """Recall@1 against median query latency, one curve per catalog size (points are ef_search values)."""
    results = data.get("index")
    if not results:
        return False
    fig, ax = plt.subplots(figsize=(7, 4.5))
    others = [r for r in data.get("sweep", []) if r not in results]  # other M values: dashed
    for r in results + others:
        xs = [p["p50_ms"] for p in r["curve"]]
        ys = [p["recall"] for p in r["curve"]]
        style = "-" if r in results else "--"
        ax.plot(xs, ys, style, marker="o", markersize=4, label=f"{r['n']:,} vectors, M={r['M']}")
        for p in r["curve"]:
            point = (p["p50_ms"], p["recall"])
            ax.annotate(str(p["ef"]), point, fontsize=7, xytext=(3, -8), textcoords="offset points")
    ax.axhline(0.99, color="grey", linestyle="--", linewidth=1)
    ax.set_xscale("log")
    ax.set_xlabel("median single-query latency, ms (log)")
    ax.set_ylabel("recall@1 vs exact")
    ax.set_title("HNSW: recall vs latency over ef_search")
    ax.legend(fontsize=8)
    _save(fig, out)
    return True


def plot_throughput(data: dict[str, Any], out: Path) -> bool:
    rates = {int(k): v for k, v in data.get("throughput", {}).items()}  # str keys after a JSON round trip
    if not rates:
        return False
    fig, ax = plt.subplots(figsize=(5, 4))
    workers = sorted(rates)
    ax.bar([str(w) for w in workers], [rates[w] for w in workers], color="tab:blue")
    ax.plot([str(w) for w in workers], [rates[workers[0]] * w for w in workers], "k--", label="linear")
    ax.set_xlabel("workers")
    ax.set_ylabel("photos/s (1280 px)")
    ax.set_title("Throughput vs workers")
    ax.legend()
    _save(fig, out)
    return True


def plot_latency(data: dict[str, Any], out: Path) -> bool:
    lat = {float(k): v for k, v in data.get("bot_latency", {}).items()}
    if not lat:
        return False
    rates = sorted(lat)
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot(rates, [lat[r]["p50"] for r in rates], marker="o", label="p50")
    ax.plot(rates, [lat[r]["p95"] for r in rates], marker="o", label="p95")
    ax.axhline(1.0, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("offered photos/s (2 workers)")
    ax.set_ylabel("update → card, s")
    ax.set_title("Bot latency under load")
    ax.legend()
    _save(fig, out)
    return True


def write(header: str, sections: list[tuple[str, str]], data: dict[str, Any], out_dir: Path = BENCH) -> Path:
    """Write RESULTS.md whole (the header, the plots, then each (title, Markdown) section) and the plots; return its
    path."""
    made = {
        key: func(data, out_dir / PLOTS[key])
        for key, func in (
            ("stages", plot_stages),
            ("index", plot_index),
            ("throughput", plot_throughput),
            ("latency", plot_latency),
        )
    }
    images = " ".join(f"![{key}]({PLOTS[key]})" for key, ok in made.items() if ok)
    parts = [header.rstrip(), images] + [f"## {title}\n\n{markdown.rstrip()}" for title, markdown in sections]
    path = out_dir / "RESULTS.md"
    path.write_text("\n\n".join(parts) + "\n", encoding="utf-8")
    return path


def versions() -> str:
    """The software the numbers depend on most."""
    import dlib
    import nmslib
    import numpy

    blas = "on" if getattr(dlib, "DLIB_USE_BLAS", False) else "off"
    return (
        f"Python {platform.python_version()}, dlib {dlib.__version__} (BLAS {blas}), nmslib {nmslib.__version__}, "
        f"numpy {numpy.__version__}"
    )
