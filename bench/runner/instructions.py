"""--instructions: instructions per malloc + free pair, counted exactly with
valgrind's callgrind (not timed, so repeatable to the instruction and
unaffected by a busy machine).

bench_instr_pair_loop runs PATTERN with SIZE for COUNT pairs and for 2 * COUNT
under each allocator (LD_PRELOAD passes through valgrind to the program);
(total at 2n - total at n) / n cancels start-up, the loader and the
allocator's first-call set-up, leaving one pair's cost, the loop's own few
instructions and the two PLT jumps included. Runs are independent and
deterministic, so they go in parallel, one per CPU.
"""

import concurrent.futures
import csv
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from allocators import Allocator
from text import align

PROGRAM = "bench_instr_pair_loop"
PATTERNS = {
    "pair": "p = malloc(size); free(p), repeated",
    "batch": "malloc 100 blocks, then free them in order, repeated",
}
_COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")


@dataclass
class Count:
    pattern: str
    size: int
    allocator: str
    count: int
    total_n: int | None = None
    total_2n: int | None = None
    error: str = ""

    @property
    def per_pair(self) -> float | None:
        if self.total_n is None or self.total_2n is None:
            return None
        return (self.total_2n - self.total_n) / self.count


class InstructionsError(Exception):
    pass


def _callgrind_total(program: Path, allocator: Allocator, pattern: str, size: int,
                     count: int) -> int:
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
               str(program), pattern, str(size), str(count)]
    done = subprocess.run(command, env=allocator.environment(), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=600)
    found = _COLLECTED.findall(done.stderr)
    if done.returncode != 0 or not found:
        tail = [line for line in done.stderr.splitlines() if line.strip()][-3:]
        raise InstructionsError(f"exit {done.returncode}: {' | '.join(tail)}")
    return int(found[-1])


def _measure(program: Path, allocator: Allocator, item: Count) -> Count:
    try:
        item.total_n = _callgrind_total(program, allocator, item.pattern, item.size, item.count)
        item.total_2n = _callgrind_total(program, allocator, item.pattern, item.size,
                                         2 * item.count)
    except (InstructionsError, subprocess.TimeoutExpired) as error:
        item.error = str(error)
    return item


def run(build_dir: Path, allocators: list[Allocator], sizes: list[int], patterns: list[str],
        count: int, out_dir: Path, log) -> str:
    """Counts every pattern x size x allocator, writes instructions.csv and
    instructions.txt into out_dir and returns the text table."""
    program = build_dir / "bench" / PROGRAM
    if not program.is_file():
        raise InstructionsError(f"{program} not found (build the bench targets)")
    if shutil.which("valgrind") is None:
        raise InstructionsError("valgrind not found (scripts/deps.sh installs it)")
    unknown = [p for p in patterns if p not in PATTERNS]
    if unknown:
        raise InstructionsError(f"unknown pattern(s) {', '.join(unknown)} "
                                f"(known: {', '.join(PATTERNS)})")
    if "batch" in patterns and count % 100 != 0:
        raise InstructionsError("--count must be a multiple of 100 for the batch pattern")

    by_name = {a.name: a for a in allocators}
    items = [Count(p, s, a.name, count) for p in patterns for s in sizes for a in allocators]
    workers = max(1, os.cpu_count() or 1)
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(_measure, program, by_name[i.allocator], i) for i in items]
        for done, future in enumerate(concurrent.futures.as_completed(futures), 1):
            item = future.result()
            value = (f"{item.per_pair:.1f} instructions/pair" if item.per_pair is not None
                     else f"FAILED: {item.error}")
            log(f"[{done:>{len(str(len(items)))}}/{len(items)}] {item.pattern} size={item.size} "
                f"{item.allocator}: {value}")

    text = _table(items, allocators, sizes, patterns, count)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "instructions.txt").write_text(text)
    with (out_dir / "instructions.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["pattern", "size", "allocator", "count", "instructions_n",
                         "instructions_2n", "per_pair", "error"])
        for i in items:
            writer.writerow([i.pattern, i.size, i.allocator, i.count, i.total_n or "",
                             i.total_2n or "", "" if i.per_pair is None else f"{i.per_pair:.2f}",
                             i.error])
    return text


def _table(items: list[Count], allocators: list[Allocator], sizes: list[int],
           patterns: list[str], count: int) -> str:
    lookup = {(i.pattern, i.size, i.allocator): i for i in items}
    out = [f"Instructions per malloc + free pair (callgrind; (I(2n) - I(n)) / n, n = {count};",
           "includes the loop's own instructions and the two PLT jumps)"]
    for pattern in patterns:
        out += ["", f"{pattern}: {PATTERNS[pattern]}", ""]
        rows = []
        for a in allocators:
            row = [a.name]
            for size in sizes:
                value = lookup[(pattern, size, a.name)].per_pair
                row.append("FAILED" if value is None else f"{value:.1f}")
            rows.append(row)
        if any(a.is_peer for a in allocators) and any(not a.is_peer for a in allocators):
            row = ["hpcalloc / best peer"]
            for size in sizes:
                peers = [lookup[(pattern, size, a.name)].per_pair for a in allocators
                         if a.is_peer]
                peers = [v for v in peers if v is not None]
                mine = lookup[(pattern, size, "hpcalloc")].per_pair
                row.append("-" if mine is None or not peers or min(peers) <= 0
                           else f"{mine / min(peers):.2f}")
            rows.append(row)
        out += align(["allocator"] + [f"size {s}" for s in sizes], rows, left=1)
    failed = [i for i in items if i.error]
    if failed:
        out += ["", "Failures:"]
        out += [f"  {i.pattern} size={i.size} {i.allocator}: {i.error}" for i in failed]
    return "\n".join(out) + "\n"
