"""The report's charts (matplotlib, drawn to files without a display):
  time.png, rss.png  grouped bars of each allocator's ratio to the best peer
                     per workload, a line at 1.0, one panel per thread count;
                     a cell without a value (every run failed) is marked with
                     its status instead of a bar
  scaling.png        with several thread counts: throughput (ops/s, median)
                     against threads, one panel per workload
  idle_rss.png       for workloads that sample their idle resident set
                     (phases): resident MiB against time (idle.py)
If matplotlib is missing the charts are skipped with a note; the text and
CSV reports do not depend on it."""

import math
import statistics
from pathlib import Path

import idle
from allocators import HPCALLOC
from report import Cell

CLIP = 3.0  # highest ratio the bar charts' axis shows
UNITS = ((1e6, "million "), (1e3, "thousand "), (1, ""))  # scaling.png's y axis

COLOURS = {"glibc": "#7f7f7f", "jemalloc": "#1f77b4", "tcmalloc": "#2ca02c",
           "mimalloc": "#9467bd", "hpcalloc": "#d62728"}
# Extra builds (NAME=PATH): one fixed colour each, in the order they appear.
EXTRA_COLOURS = ["#ff7f0e", "#8c564b", "#e377c2", "#bcbd22", "#17becf"]


def colour(name: str, allocators: list[str]) -> str:
    if name in COLOURS:
        return COLOURS[name]
    extras = [a for a in allocators if a not in COLOURS]
    return EXTRA_COLOURS[extras.index(name) % len(EXTRA_COLOURS)]


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def write_all(out_dir: Path, cells: list[Cell], allocators: list[str], runs=()) -> list[str]:
    """Draws every chart into out_dir (idle_rss.png from the runs, see
    idle.py); returns the notes to print (files written, or why none were)."""
    plt = _pyplot()
    if plt is None:
        return ["charts skipped: matplotlib is not installed "
                "(scripts/deps.sh installs python3-matplotlib for /usr/bin/python3)"]
    notes = []
    for metric, title in (("time", "Time"), ("rss", "Peak RSS")):
        path = out_dir / f"{metric}.png"
        _ratio_bars(plt, path, cells, allocators, metric, title)
        notes.append(f"wrote {path}")
    if len({c.threads for c in cells}) > 1:
        path = out_dir / "scaling.png"
        _scaling(plt, path, cells, allocators)
        notes.append(f"wrote {path}")
    notes += idle.plot(plt, out_dir, runs, allocators, colour)
    return notes


def _ratio_bars(plt, path: Path, cells: list[Cell], allocators: list[str], metric: str,
                title: str) -> None:
    thread_counts = sorted({c.threads for c in cells})
    workloads = sorted({c.workload for c in cells})
    lookup = {(c.workload, c.threads, c.allocator): c for c in cells}

    def ratio(cell: Cell) -> float | None:
        return cell.time_ratio if metric == "time" else cell.rss_ratio

    values = [v for v in map(ratio, cells) if v is not None]
    # A pathological ratio (glibc at 20x) would flatten every other bar: the
    # axis stops at CLIP and taller bars carry their value as a label.
    top = min(max(values, default=1.0), CLIP)
    width = 0.8 / max(1, len(allocators))
    fig, axes = plt.subplots(len(thread_counts), 1, squeeze=False,
                             figsize=(max(7.0, 0.25 * len(workloads) * len(allocators) + 2.5),
                                      2.9 * len(thread_counts) + 1.2))
    for row, threads in enumerate(thread_counts):
        ax = axes[row][0]
        for i, name in enumerate(allocators):
            for x, workload in enumerate(workloads):
                cell = lookup.get((workload, threads, name))
                if cell is None:
                    continue
                position = x - 0.4 + width * (i + 0.5)
                value = ratio(cell)
                if value is None:
                    if not cell.has_value:
                        status = max(cell.failures, key=cell.failures.get)
                        ax.plot([position], [1.0], marker="x", color="red", markersize=8, mew=2)
                        ax.annotate(status, (position, 1.0), textcoords="offset points",
                                    xytext=(0, 7), ha="center", fontsize=6, color="red",
                                    rotation=90)
                    continue
                clipped = value > top * 1.04
                ax.bar([position], [min(value, top * 1.04)], width, color=colour(name, allocators),
                       edgecolor="black" if name == HPCALLOC else "none", linewidth=0.6,
                       hatch="///" if clipped else None)
                if name == HPCALLOC or clipped:
                    ax.annotate(f"{value:.2f}", (position, min(value, top * 1.04)),
                                textcoords="offset points", xytext=(0, 2), ha="center",
                                fontsize=6, rotation=90 if name != HPCALLOC else 0)
        ax.axhline(1.0, color="black", linewidth=0.9, linestyle="--")
        ax.set_ylim(0, max(1.25, top * 1.15))
        ax.set_xticks(range(len(workloads)))
        ax.set_xticklabels(workloads, rotation=20, ha="right", fontsize=9)
        ax.set_ylabel(f"threads={threads}")
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].set_title(f"{title}: median / best peer's median (lower is better; "
                         f"peers: every allocator but {HPCALLOC})", fontsize=10)
    handles = [plt.Rectangle((0, 0), 1, 1, color=colour(name, allocators)) for name in allocators]
    fig.legend(handles, allocators, loc="lower center", ncol=len(allocators), fontsize=8,
               frameon=False)
    fig.tight_layout(rect=(0, 0.06 if len(thread_counts) == 1 else 0.03, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _throughput(cell: Cell) -> float | None:
    rates = [ops / s for ops, s in zip(cell.ops, cell.seconds) if s > 0]
    return statistics.median(rates) if rates else None


def _scaling(plt, path: Path, cells: list[Cell], allocators: list[str]) -> None:
    workloads = sorted({c.workload for c in cells})
    columns = min(3, len(workloads))
    rows = math.ceil(len(workloads) / columns)
    fig, axes = plt.subplots(rows, columns, squeeze=False, figsize=(4.2 * columns, 3.2 * rows))
    for index, workload in enumerate(workloads):
        ax = axes[index // columns][index % columns]
        series = {}
        for name in allocators:
            points = sorted((c.threads, _throughput(c)) for c in cells
                            if c.workload == workload and c.allocator == name)
            series[name] = [(t, r) for t, r in points if r is not None]
        peak = max((r for points in series.values() for _, r in points), default=0.0)
        divisor, unit = next((d, u) for d, u in UNITS if peak >= d or d == 1)
        for name, points in series.items():
            if points:
                ax.plot([t for t, _ in points], [r / divisor for _, r in points], marker="o",
                        label=name, color=colour(name, allocators))
        ax.set_title(workload, fontsize=10)
        ax.set_xlabel("threads")
        ax.set_ylabel(f"{unit}ops/s (median)")
        ax.set_ylim(bottom=0)
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.grid(alpha=0.3)
    for index in range(len(workloads), rows * columns):
        axes[index // columns][index % columns].axis("off")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
