"""RSS after idle: for workloads that sample their resident set while idle
(bench/phases.cpp reports live_bytes and rss_0ms ... rss_5s), the median
of each sample per allocator, next to the live bytes, as a table in the
report and a chart (idle_rss.png: resident MiB against time since the
program went idle, one line per allocator, the live bytes as a floor).

The memory-return goal it checks (issue 14): after 1 s of idle, hpcalloc's
resident set is at most 1.1 x the live bytes plus 8 MiB, and below every
peer's."""

import statistics
from pathlib import Path

from allocators import HPCALLOC

# The samples a workload may report, in time order: (key, milliseconds).
SAMPLES = (("rss_0ms", 0), ("rss_10ms", 10), ("rss_100ms", 100), ("rss_1s", 1000),
           ("rss_5s", 5000))
GOAL_FACTOR = 1.1
GOAL_SLACK_BYTES = 8 << 20
MIB = float(1 << 20)


def _medians(runs) -> dict:
    """(workload, threads, allocator) -> {key: median bytes} over the
    successful runs that report idle samples."""
    values = {}
    for run in runs:
        r = run.result
        if not r.ok or "rss_1s" not in r.extra:
            continue
        into = values.setdefault((run.workload, run.threads, run.allocator), {})
        for key in ("live_bytes",) + tuple(k for k, _ in SAMPLES):
            if key in r.extra:
                into.setdefault(key, []).append(int(r.extra[key]))
    return {group: {k: statistics.median(v) for k, v in samples.items()}
            for group, samples in values.items()}


def render(runs, allocators) -> list[str]:
    """The report's lines (none when no workload samples idle RSS)."""
    medians = _medians(runs)
    if not medians:
        return []
    peers = {a.name for a in allocators if a.is_peer}
    out = ["", "RSS after idle (MiB, medians; live = bytes still allocated while idle)", ""]
    headers = ["workload", "threads", "allocator", "live"] + [k[4:] for k, _ in SAMPLES]
    rows = []
    goals = []
    for workload, threads in sorted({(w, t) for w, t, _ in medians}):
        group = {a: medians[(workload, threads, a)] for _, _, a in medians
                 if (workload, threads, a) in medians}
        for allocator in [a.name for a in allocators if a.name in group]:
            m = group[allocator]
            rows.append([workload, str(threads), allocator, f"{m.get('live_bytes', 0) / MIB:.0f}"]
                        + [f"{m[k] / MIB:.0f}" if k in m else "-" for k, _ in SAMPLES])
        mine = group.get(HPCALLOC)
        if mine is not None:
            bound = GOAL_FACTOR * mine.get("live_bytes", 0) + GOAL_SLACK_BYTES
            best_peer = min((m["rss_1s"] for a, m in group.items() if a in peers), default=None)
            within = mine["rss_1s"] <= bound
            below = best_peer is None or mine["rss_1s"] < best_peer
            goals.append(f"  {'PASS' if within and below else 'FAIL'}  {workload} at {threads} "
                         f"threads: hpcalloc {mine['rss_1s'] / MIB:.0f} MiB after 1 s idle; "
                         f"bound 1.1 x live + 8 = {bound / MIB:.0f} MiB; lowest peer "
                         + ("-" if best_peer is None else f"{best_peer / MIB:.0f} MiB"))
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = lambda cells: "  ".join(c.ljust(w) if i < 3 else c.rjust(w)  # noqa: E731
                                   for i, (c, w) in enumerate(zip(cells, widths)))
    out += [line(headers)] + [line(r) for r in rows]
    if goals:
        out += ["", "Memory-return goal (after 1 s idle: <= 1.1 x live + 8 MiB, below every peer):"]
        out += goals
    return out


def plot(plt, out_dir: Path, runs, allocators: list[str], colour) -> list[str]:
    """idle_rss.png, one panel per workload x threads; the notes to print."""
    medians = _medians(runs)
    groups = sorted({(w, t) for w, t, _ in medians})
    if not groups:
        return []
    fig, axes = plt.subplots(len(groups), 1, squeeze=False, figsize=(7.5, 3.2 * len(groups) + 0.8))
    # The time axis is logarithmic; 0 ms is drawn at 1 ms.
    times = [max(ms, 1) for _, ms in SAMPLES]
    for row, (workload, threads) in enumerate(groups):
        ax = axes[row][0]
        live = None
        for allocator in allocators:
            m = medians.get((workload, threads, allocator))
            if m is None:
                continue
            points = [(t, m[k] / MIB) for (k, _), t in zip(SAMPLES, times) if k in m]
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o",
                    label=allocator, color=colour(allocator, allocators))
            live = m.get("live_bytes", live)
        if live is not None:
            ax.axhline(live / MIB, color="black", linestyle="--", linewidth=0.8, label="live")
        ax.set_xscale("log")
        ax.set_xticks(times)
        ax.set_xticklabels([k[4:] for k, _ in SAMPLES])
        ax.set_ylabel("resident MiB")
        ax.set_title(f"{workload}, {threads} threads: resident set after the program went idle")
        ax.legend(fontsize="small")
    fig.tight_layout()
    path = out_dir / "idle_rss.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [f"wrote {path}"]
