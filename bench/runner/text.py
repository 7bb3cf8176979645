"""The plain-text report printed at the end of a run and kept as summary.txt:
the per-cell table, the ratio matrices, the per-allocator geometric means and
hpcalloc's goal check. Columns are aligned; numbers right, names left."""

from allocators import HPCALLOC, Allocator
from report import AllocatorSummary, Cell, goal_check, groups, hpcalloc_summary


def align(headers: list[str], rows: list[list[str]], left: int = 1,
          last_left: bool = False) -> list[str]:
    """Rows as aligned lines: the first `left` columns (and the last one if
    `last_left`) left-aligned, the rest right-aligned. An empty row gives an
    empty line."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, value in enumerate(row):
            widths[i] = max(widths[i], len(value))

    def line(values):
        last = len(widths) - 1
        parts = [v.ljust(w) if i < left or (last_left and i == last) else v.rjust(w)
                 for i, (v, w) in enumerate(zip(values, widths))]
        return "  ".join(parts).rstrip()

    out = [line(headers), "  ".join("-" * w for w in widths)]
    out += [line(row) if row else "" for row in rows]
    return out


def _ratio(value: float | None, best: bool = False) -> str:
    return "-" if value is None else f"{value:.3f}" + ("*" if best else " ")


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def cell_table(cells: list[Cell]) -> list[str]:
    headers = ["workload", "threads", "allocator", "ok", "seconds", "spread", "t/best",
               "peak RSS MiB", "spread", "rss/best", "failures"]
    rows: list[list[str]] = []
    for group in groups(cells):
        if rows:
            rows.append([])
        for i, c in enumerate(group):
            first = i == 0
            if c.has_value:
                values = [f"{c.median_seconds:.4f}", _pct(c.time_spread()),
                          _ratio(c.time_ratio, c.allocator == c.best_time_peer),
                          f"{c.median_rss_kib / 1024:.1f}", _pct(c.rss_spread()),
                          _ratio(c.rss_ratio, c.allocator == c.best_rss_peer)]
            else:
                worst = max(c.failures, key=c.failures.get)
                values = [worst, "-", "-", "-", "-", "-"]
            rows.append([c.workload if first else "", str(c.threads) if first else "",
                         c.allocator, f"{c.ok_runs}/{c.runs}", *values, c.failure_text()])
    return align(headers, rows, left=3, last_left=True)


def ratio_matrix(cells: list[Cell], allocators: list[Allocator], metric: str) -> list[str]:
    """Rows workload x threads, a column per allocator, cells the ratio to
    the best peer (`metric` "time" or "rss"); a failed cell shows its status."""
    names = [a.name for a in allocators]
    rows = []
    for group in groups(cells):
        by_name = {c.allocator: c for c in group}
        row = [group[0].workload, str(group[0].threads)]
        for name in names:
            c = by_name.get(name)
            if c is None:
                row.append("")
            elif not c.has_value:
                row.append(max(c.failures, key=c.failures.get))
            else:
                value = c.time_ratio if metric == "time" else c.rss_ratio
                row.append(_ratio(value).strip())
        rows.append(row)
    return align(["workload", "threads", *names], rows, left=2)


def allocator_table(summaries: list[AllocatorSummary]) -> list[str]:
    headers = ["allocator", "runs ok", "cells", "time geomean", "worst time",
               "rss geomean", "worst rss"]
    rows = []
    for s in summaries:
        def worst(pair):
            return "-" if pair is None else f"{pair[0]:.3f} ({pair[1]})"

        rows.append([s.allocator, f"{s.ok_runs}/{s.runs}", str(s.cells),
                     _ratio(s.time_geomean).strip(), worst(s.worst_time),
                     _ratio(s.rss_geomean).strip(), worst(s.worst_rss)])
    return align(headers, rows, left=1)


def render(cells: list[Cell], summaries: list[AllocatorSummary], allocators: list[Allocator],
           header: list[str]) -> str:
    peers = [a.name for a in allocators if a.is_peer]
    out = list(header)
    out += ["", "Medians over the successful repetitions; spread = (max - min) / median;",
            "t/best and rss/best = median / best peer's median (best peer: lowest of "
            + (", ".join(peers) or "no peer") + ", marked *).", ""]
    out += cell_table(cells)
    for metric, title in (("time", "Time"), ("rss", "Peak RSS")):
        out += ["", f"{title} ratio to the best peer (< 1: better than every peer)", ""]
        out += ratio_matrix(cells, allocators, metric)
    out += ["", "Per allocator: geometric mean and worst of its ratios over all "
            "workload x thread cells", ""]
    out += allocator_table(summaries)
    mine = hpcalloc_summary(summaries)
    if mine is not None and peers:
        out += ["", "Goal check (hpcalloc against the best peer):"]
        for criterion, observed, passed in goal_check(mine):
            out.append(f"  {'PASS' if passed else 'FAIL'}  {criterion:<32} {observed}")
    elif HPCALLOC in (a.name for a in allocators):
        out += ["", "Goal check: no peer allocator was run, nothing to compare with."]
    return "\n".join(out) + "\n"
