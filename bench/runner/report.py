"""From the runs to the report: medians, spreads, ratios to the best peer,
geometric means, the goal check, and the CSV files.

A *cell* is one workload at one thread count under one allocator. Its value
is the median over its successful repetitions; its spread is (max - min) /
median of those, so noise is visible next to every number. For each
workload and thread count the *best peer* is the peer allocator (not
hpcalloc) with the lowest median, chosen separately for time and for peak
RSS; every allocator's ratio is its median over the best peer's. A ratio
below 1 for hpcalloc means it beat every peer.
"""

import csv
import math
import statistics
from dataclasses import dataclass
from pathlib import Path

from allocators import HPCALLOC, Allocator
from measure import RunResult

# The goal hpcalloc is held to (ratios to the best peer).
GOAL_TIME_GEOMEAN = 0.95
GOAL_RSS_GEOMEAN = 1.05
GOAL_WORST_TIME = 1.3


@dataclass
class Run:
    workload: str
    threads: int
    allocator: str
    rep: int  # 1-based
    result: RunResult


@dataclass
class Cell:
    workload: str
    threads: int
    allocator: str
    is_peer: bool
    runs: int
    ok_runs: int
    failures: dict[str, int]  # status -> count
    seconds: list[float]
    rss_kib: list[int]
    ops: list[int]
    time_ratio: float | None = None
    rss_ratio: float | None = None
    best_time_peer: str = ""
    best_rss_peer: str = ""

    @property
    def has_value(self) -> bool:
        return self.ok_runs > 0

    @property
    def median_seconds(self) -> float | None:
        return statistics.median(self.seconds) if self.seconds else None

    @property
    def median_rss_kib(self) -> float | None:
        return statistics.median(self.rss_kib) if self.rss_kib else None

    def time_spread(self) -> float | None:
        return spread(self.seconds)

    def rss_spread(self) -> float | None:
        return spread(self.rss_kib)

    def failure_text(self) -> str:
        return ", ".join(f"{status} x{count}" for status, count in sorted(self.failures.items()))


def spread(values: list[float]) -> float | None:
    """(max - min) / median, or None with fewer than two values."""
    if len(values) < 2:
        return None
    median = statistics.median(values)
    return (max(values) - min(values)) / median if median > 0 else 0.0


def geomean(values: list[float]) -> float | None:
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else None


def summarize(runs: list[Run], allocators: list[Allocator]) -> list[Cell]:
    """One Cell per workload x threads x allocator that has runs, ratios filled
    in, ordered by workload, threads, then the allocators' order."""
    order = {a.name: i for i, a in enumerate(allocators)}
    peer = {a.name: a.is_peer for a in allocators}
    cells: dict[tuple[str, int, str], Cell] = {}
    for run in runs:
        key = (run.workload, run.threads, run.allocator)
        cell = cells.get(key)
        if cell is None:
            cell = Cell(run.workload, run.threads, run.allocator, peer[run.allocator],
                        0, 0, {}, [], [], [])
            cells[key] = cell
        cell.runs += 1
        result = run.result
        if result.ok:
            cell.ok_runs += 1
            cell.seconds.append(result.seconds)
            cell.rss_kib.append(result.peak_rss_kib)
            cell.ops.append(result.ops)
        else:
            cell.failures[result.status] = cell.failures.get(result.status, 0) + 1
    ordered = sorted(cells.values(), key=lambda c: (c.workload, c.threads, order[c.allocator]))
    for group in groups(ordered):
        _fill_ratios(group)
    return ordered


def groups(cells: list[Cell]) -> list[list[Cell]]:
    """The cells split by (workload, threads), in order."""
    out: list[list[Cell]] = []
    for cell in cells:
        if out and (out[-1][0].workload, out[-1][0].threads) == (cell.workload, cell.threads):
            out[-1].append(cell)
        else:
            out.append([cell])
    return out


def _fill_ratios(group: list[Cell]) -> None:
    peers = [c for c in group if c.is_peer and c.has_value]
    if not peers:
        return
    best_time = min(peers, key=lambda c: c.median_seconds)
    best_rss = min(peers, key=lambda c: c.median_rss_kib)
    for cell in group:
        cell.best_time_peer, cell.best_rss_peer = best_time.allocator, best_rss.allocator
        if cell.has_value:
            if best_time.median_seconds > 0:
                cell.time_ratio = cell.median_seconds / best_time.median_seconds
            if best_rss.median_rss_kib > 0:
                cell.rss_ratio = cell.median_rss_kib / best_rss.median_rss_kib


@dataclass
class AllocatorSummary:
    allocator: str
    time_geomean: float | None
    rss_geomean: float | None
    worst_time: tuple[float, str] | None  # (ratio, "workload t=N")
    worst_rss: tuple[float, str] | None
    cells: int  # with a ratio
    missing: list[str]  # "workload t=N" cells without a value
    runs: int
    ok_runs: int


def per_allocator(cells: list[Cell], allocators: list[Allocator]) -> list[AllocatorSummary]:
    out = []
    for allocator in allocators:
        mine = [c for c in cells if c.allocator == allocator.name]
        timed = [c for c in mine if c.time_ratio is not None]
        sized = [c for c in mine if c.rss_ratio is not None]
        label = lambda c: f"{c.workload} t={c.threads}"
        worst_time = max(((c.time_ratio, label(c)) for c in timed), default=None)
        worst_rss = max(((c.rss_ratio, label(c)) for c in sized), default=None)
        out.append(AllocatorSummary(
            allocator.name,
            geomean([c.time_ratio for c in timed]), geomean([c.rss_ratio for c in sized]),
            worst_time, worst_rss, len(timed),
            [label(c) for c in mine if not c.has_value],
            sum(c.runs for c in mine), sum(c.ok_runs for c in mine)))
    return out


def goal_check(summary: AllocatorSummary) -> list[tuple[str, str, bool]]:
    """(criterion, observed value, passed) for hpcalloc's goal."""
    def fmt(value):
        return "n/a" if value is None else f"{value:.3f}"

    worst_ok = (summary.worst_time is not None and summary.worst_time[0] <= GOAL_WORST_TIME
                and not summary.missing)
    worst_text = ("n/a" if summary.worst_time is None
                  else f"{summary.worst_time[0]:.3f} ({summary.worst_time[1]})")
    if summary.missing:
        worst_text += f"; no value for {', '.join(summary.missing)}"
    return [
        (f"time geomean <= {GOAL_TIME_GEOMEAN}", fmt(summary.time_geomean),
         summary.time_geomean is not None and summary.time_geomean <= GOAL_TIME_GEOMEAN),
        (f"RSS geomean <= {GOAL_RSS_GEOMEAN}", fmt(summary.rss_geomean),
         summary.rss_geomean is not None and summary.rss_geomean <= GOAL_RSS_GEOMEAN),
        (f"no workload's time ratio > {GOAL_WORST_TIME}", worst_text, worst_ok),
        ("every run succeeded", f"{summary.ok_runs}/{summary.runs}",
         summary.runs > 0 and summary.ok_runs == summary.runs),
    ]


def hpcalloc_summary(summaries: list[AllocatorSummary]) -> AllocatorSummary | None:
    return next((s for s in summaries if s.allocator == HPCALLOC), None)


RUN_COLUMNS = ["workload", "threads", "allocator", "rep", "status", "seconds", "ops",
               "peak_rss_kib", "wall_seconds", "cpu_seconds", "detail"]


def write_runs_csv(path: Path, runs: list[Run]) -> None:
    """Every run, failed ones included; the workloads' own key=value fields
    as extra columns (empty where a run did not report that key)."""
    extra_keys = sorted({k for run in runs for k in run.result.extra})
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(RUN_COLUMNS + extra_keys)
        for run in runs:
            r = run.result
            writer.writerow(
                [run.workload, run.threads, run.allocator, run.rep, r.status,
                 "" if r.seconds is None else f"{r.seconds:.6f}",
                 "" if r.ops is None else r.ops,
                 "" if r.peak_rss_kib is None else r.peak_rss_kib,
                 f"{r.wall_seconds:.3f}", f"{r.cpu_seconds:.3f}", r.detail]
                + [r.extra.get(k, "") for k in extra_keys])


def read_runs_csv(path: Path) -> list[Run]:
    """The runs of a runs.csv written by write_runs_csv."""
    runs = []
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            def value(key, kind):
                return kind(row[key]) if row.get(key) else None

            result = RunResult(
                status=row["status"], seconds=value("seconds", float), ops=value("ops", int),
                peak_rss_kib=value("peak_rss_kib", int),
                wall_seconds=value("wall_seconds", float) or 0.0,
                cpu_seconds=value("cpu_seconds", float) or 0.0, detail=row.get("detail", ""),
                extra={k: v for k, v in row.items() if k not in RUN_COLUMNS and v})
            runs.append(Run(row["workload"], int(row["threads"]), row["allocator"],
                            int(row["rep"]), result))
    return runs


def write_summary_csv(path: Path, cells: list[Cell]) -> None:
    def num(value, digits=6):
        return "" if value is None else f"{value:.{digits}f}"

    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["workload", "threads", "allocator", "runs", "ok_runs", "failures",
                         "median_seconds", "min_seconds", "max_seconds", "time_spread_pct",
                         "time_ratio", "best_time_peer", "median_peak_rss_kib",
                         "min_peak_rss_kib", "max_peak_rss_kib", "rss_spread_pct", "rss_ratio",
                         "best_rss_peer", "median_ops"])
        for c in cells:
            ts, rs = c.time_spread(), c.rss_spread()
            writer.writerow([
                c.workload, c.threads, c.allocator, c.runs, c.ok_runs, c.failure_text(),
                num(c.median_seconds), num(min(c.seconds, default=None)),
                num(max(c.seconds, default=None)), num(ts and ts * 100, 2),
                num(c.time_ratio, 4), c.best_time_peer, num(c.median_rss_kib, 0),
                num(min(c.rss_kib, default=None), 0), num(max(c.rss_kib, default=None), 0),
                num(rs and rs * 100, 2), num(c.rss_ratio, 4), c.best_rss_peer,
                num(statistics.median(c.ops) if c.ops else None, 0)])
