"""Paired comparison (--against NAME): every allocator's runs against NAME's.

Runs are interleaved, so repetition r of a workload under every allocator
ran close together in time; the ratio of two such runs cancels most of the
machine's drift (a busy neighbour, frequency changes) that the medians of
independent runs keep. For each workload and thread count the table gives
the median over repetitions of (allocator's run r) / (NAME's run r), in
time and in peak RSS, over the repetitions where both runs succeeded, and
the geometric mean of those medians over all cells. This is how a change is
measured against the build before it (NAME=before).
"""

import math
import statistics

import text
from report import Run


def _geomean(values: list[float]) -> float | None:
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else None


def paired_ratios(runs: list[Run], allocator: str, against: str):
    """{(workload, threads): (time ratios, rss ratios)} of allocator / against."""
    by_key = {}
    for run in runs:
        if run.result.ok:
            by_key[(run.workload, run.threads, run.allocator, run.rep)] = run.result
    ratios = {}
    for (workload, threads, name, rep), mine in by_key.items():
        if name != allocator:
            continue
        base = by_key.get((workload, threads, against, rep))
        if base is None or not base.seconds or not mine.seconds:
            continue
        times, rss = ratios.setdefault((workload, threads), ([], []))
        times.append(mine.seconds / base.seconds)
        if mine.peak_rss_kib and base.peak_rss_kib:
            rss.append(mine.peak_rss_kib / base.peak_rss_kib)
    return ratios


def render(runs: list[Run], allocator_names: list[str], against: str) -> list[str]:
    """The --against section of the report, as lines."""
    others = [name for name in allocator_names if name != against]
    if against not in allocator_names or not others:
        return ["", f"Paired comparison: no runs of '{against}' and another allocator."]
    out = ["", f"Paired ratios to {against} (median over repetitions of run r / "
               f"{against}'s run r; n = pairs)", ""]
    headers = ["workload", "threads"] + [f"{n} time" for n in others] + \
              [f"{n} RSS" for n in others] + ["n"]
    rows = []
    time_medians = {name: [] for name in others}
    rss_medians = {name: [] for name in others}
    per_allocator = {name: paired_ratios(runs, name, against) for name in others}
    cells = sorted({key for ratios in per_allocator.values() for key in ratios})
    for workload, threads in cells:
        row_time, row_rss, pairs = [], [], 0
        for name in others:
            times, rss = per_allocator[name].get((workload, threads), ([], []))
            t = statistics.median(times) if times else None
            r = statistics.median(rss) if rss else None
            if t is not None:
                time_medians[name].append(t)
            if r is not None:
                rss_medians[name].append(r)
            row_time.append(f"{t:.3f}" if t is not None else "-")
            row_rss.append(f"{r:.3f}" if r is not None else "-")
            pairs = max(pairs, len(times))
        rows.append([workload, str(threads)] + row_time + row_rss + [str(pairs)])
    geo_time = [_geomean(time_medians[n]) for n in others]
    geo_rss = [_geomean(rss_medians[n]) for n in others]
    rows.append(["geometric mean", ""] +
                [f"{g:.3f}" if g is not None else "-" for g in geo_time] +
                [f"{g:.3f}" if g is not None else "-" for g in geo_rss] + [""])
    out += text.align(headers, rows, left=2)
    return out
