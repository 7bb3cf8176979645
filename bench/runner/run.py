#!/usr/bin/env python3
"""hpcalloc's benchmark runner: every workload program (and real program:
bench/programs/) under every allocator,
each run its own process, interleaved so that drift and noise hit all
allocators alike; then medians, ratios to the best peer, the goal check,
CSV files and charts. See bench/README.md.

  run.py --build-dir build/release [--workloads=a,b] [--allocators=a,b]
         [--threads=1,2,4] [--reps=5] [--scale=1] [--timeout=120]
  run.py --instructions [--sizes=16,64,...] [--patterns=pair,batch]
  run.py --micro [--micro-filter=REGEX]
  run.py --list
  run.py --report DIR      (the report of an earlier run, from DIR/runs.csv)

Standard library only, plus matplotlib for the charts (skipped without it).
"""

import argparse
import datetime
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

# The runner's modules sit beside it; no __pycache__ in the source tree.
sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent))

import allocators as allocators_module  # noqa: E402
import idle  # noqa: E402
import instructions  # noqa: E402
import paired  # noqa: E402
import plots  # noqa: E402
import programs  # noqa: E402
import report  # noqa: E402
import text  # noqa: E402
from measure import run_workload  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
# Starts each workload run and reports its rusage (spawn.c).
SPAWNER = "bench_runner_spawn"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def comma_list(kind):
    def parse(value: str):
        try:
            items = [kind(v) for v in value.split(",") if v.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a comma-separated list of {kind.__name__}: "
                                             f"{value}")
        if not items:
            raise argparse.ArgumentTypeError("empty list")
        return items
    return parse


def positive(kind):
    def parse(value: str):
        number = kind(value)
        if number <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0: {value}")
        return number
    return parse


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="run.py", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build-dir", type=Path, default=REPO_ROOT / "build" / "release",
                        help="build tree with bench/ and src/libhpcalloc.so (default %(default)s)")
    parser.add_argument("--allocators", type=comma_list(str), metavar="A,B,...",
                        default=list(allocators_module.ALL_NAMES),
                        help="comma-separated, from " + ",".join(allocators_module.ALL_NAMES))
    parser.add_argument("--workloads", type=comma_list(str), metavar="W,W,...",
                        help="comma-separated workload names (default: every bench_* "
                             "found and every bench/programs/*.py)")
    parser.add_argument("--threads", type=comma_list(positive(int)),
                        default=[os.cpu_count() or 1],
                        metavar="N,N,...",
                        help=f"thread counts (default: the CPUs, {os.cpu_count() or 1})")
    parser.add_argument("--reps", type=positive(int), default=5,
                        help="repetitions of every run (default %(default)s)")
    parser.add_argument("--scale", type=positive(float), default=1.0,
                        help="work per run, passed to every workload (default %(default)s)")
    parser.add_argument("--seed", type=int, default=1,
                        help="seeds the run order and the workloads (default %(default)s)")
    parser.add_argument("--timeout", type=positive(float), default=120.0,
                        help="seconds before a run is killed (default %(default)s)")
    parser.add_argument("--out-dir", type=Path,
                        help="where results go (default bench/results/<UTC time>/)")
    parser.add_argument("--list", action="store_true",
                        help="list the workloads, allocators and micro benchmarks found")
    parser.add_argument("--report", type=Path, metavar="DIR",
                        help="rebuild the report and charts of an earlier run from DIR/runs.csv")
    parser.add_argument("--against", metavar="NAME",
                        help="also compare every allocator with NAME run by run (paired "
                             "ratios: how a change is measured against the build before it)")
    group = parser.add_argument_group("instruction counts (--instructions)")
    group.add_argument("--instructions", action="store_true",
                       help="count instructions per malloc+free pair under callgrind instead")
    group.add_argument("--sizes", type=comma_list(positive(int)),
                       default=[16, 64, 256, 1024, 4096], metavar="S,S,...",
                       help="block sizes (default 16,64,256,1024,4096)")
    group.add_argument("--patterns", type=comma_list(str), default=list(instructions.PATTERNS),
                       metavar="P,P",
                       help="from " + ",".join(instructions.PATTERNS) + " (default: both)")
    group.add_argument("--count", type=positive(int), default=100000,
                       help="n, pairs in the shorter run (default %(default)s)")
    group = parser.add_argument_group("micro benchmarks (--micro)")
    group.add_argument("--micro", action="store_true",
                       help="run the Google Benchmark programs bench_micro_* instead")
    group.add_argument("--micro-filter", metavar="REGEX", help="passed as --benchmark_filter")
    return parser.parse_args(argv)


def default_out_dir() -> Path:
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return REPO_ROOT / "bench" / "results" / stamp


def plan_runs(workloads: list[str], thread_counts: list[int], names: list[str], reps: int,
              seed: int) -> list[tuple[int, str, int, str]]:
    """(rep, workload, threads, allocator) in run order. Each workload x
    threads gets its own shuffled allocator order, rotated by one place per
    repetition, so over len(names) repetitions every allocator runs in every
    position once and none is always first (cold caches) or last."""
    rng = random.Random(seed)
    base_orders = {}
    for workload in workloads:
        for threads in thread_counts:
            order = list(names)
            rng.shuffle(order)
            base_orders[(workload, threads)] = order
    plan = []
    for rep in range(reps):
        for workload in workloads:
            for threads in thread_counts:
                order = base_orders[(workload, threads)]
                shift = rep % len(order)
                for name in order[shift:] + order[:shift]:
                    plan.append((rep, workload, threads, name))
    return plan


def progress_line(index: int, total: int, run: report.Run) -> str:
    r = run.result
    head = (f"[{index:>{len(str(total))}}/{total}] {run.workload} t={run.threads} "
            f"{run.allocator} rep {run.rep}: ")
    rss = "" if r.peak_rss_kib is None else f", {r.peak_rss_kib / 1024:.1f} MiB"
    if r.ok:
        return head + f"{r.seconds:.3f} s{rss}"
    return head + f"{r.status} ({r.detail}) after {r.wall_seconds:.1f} s{rss}"


def keep_failure_output(out_dir: Path, run: report.Run) -> Path:
    folder = out_dir / "failures"
    folder.mkdir(exist_ok=True)
    path = folder / f"{run.workload}-t{run.threads}-{run.allocator}-rep{run.rep}.stderr"
    path.write_text(run.result.stderr)
    return path


def run_benchmarks(args, allocators, workloads: dict[str, programs.Workload], spawner: Path,
                   out_dir: Path) -> int:
    plan = plan_runs(list(workloads), args.threads, [a.name for a in allocators], args.reps,
                     args.seed)
    by_name = {a.name: a for a in allocators}
    log(f"{len(plan)} runs: {len(workloads)} workloads x {len(args.threads)} thread counts x "
        f"{len(allocators)} allocators x {args.reps} reps; results in {out_dir}")
    load_before = os.getloadavg()[0]
    if load_before > 0.5:
        log(f"warning: load average {load_before:.2f}: other programs running now add noise "
            "to every time measured")
    runs: list[report.Run] = []
    started = time.monotonic()
    interrupted = False
    try:
        for index, (rep, workload, threads, name) in enumerate(plan, 1):
            command, env = workloads[workload].launch(threads, args.scale, args.seed + rep,
                                                      by_name[name].environment(), spawner)
            result = run_workload(spawner, command, env, args.timeout)
            run = report.Run(workload, threads, name, rep + 1, result)
            runs.append(run)
            log(progress_line(index, len(plan), run))
            if not result.ok:
                log(f"    stderr kept in {keep_failure_output(out_dir, run)}")
            if index < len(plan) and plan[index][0] != rep:
                elapsed = time.monotonic() - started
                log(f"--- rep {rep + 1}/{args.reps} done, {elapsed:.0f} s so far, about "
                    f"{elapsed / index * (len(plan) - index):.0f} s left")
    except KeyboardInterrupt:
        interrupted = True
        log(f"\ninterrupted after {len(runs)} of {len(plan)} runs; reporting those")

    report.write_runs_csv(out_dir / "runs.csv", runs)
    if not runs:
        return 130 if interrupted else 1
    header = [f"hpcalloc benchmarks  {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} "
              f"UTC  build {args.build_dir}",
              f"reps={args.reps} scale={args.scale:g} seed={args.seed} threads="
              + ",".join(map(str, args.threads)) + f" timeout={args.timeout:g}s  "
              f"{os.cpu_count()} CPUs  {len(runs)} runs in {time.monotonic() - started:.0f} s  "
              f"load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after"
              + ("  (INTERRUPTED: partial)" if interrupted else "")]
    write_report(out_dir, runs, allocators, header, args.against)
    log(f"results: {out_dir}")
    if interrupted:
        return 130
    return 0


def write_report(out_dir: Path, runs: list[report.Run], allocators, header: list[str],
                 against: str | None = None) -> None:
    """Prints the report and writes summary.txt, summary.csv and the charts."""
    cells = report.summarize(runs, allocators)
    summaries = report.per_allocator(cells, allocators)
    table = text.render(cells, summaries, allocators, header)
    idle_lines = idle.render(runs, allocators)
    if idle_lines:
        table += "\n".join(idle_lines) + "\n"
    if against:
        table += "\n".join(paired.render(runs, [a.name for a in allocators], against)) + "\n"
    print(table, end="")
    (out_dir / "summary.txt").write_text(table)
    report.write_summary_csv(out_dir / "summary.csv", cells)
    for note in plots.write_all(out_dir, cells, [a.name for a in allocators], runs):
        log(note)


def rebuild_report(directory: Path, against: str | None = None) -> int:
    """--report: the report of an earlier run, again, from its runs.csv."""
    path = directory / "runs.csv"
    if not path.is_file():
        log(f"run.py: {path} not found")
        return 2
    runs = report.read_runs_csv(path)
    if not runs:
        log(f"run.py: no runs in {path}")
        return 1
    present = {run.allocator for run in runs}
    names = [n for n in allocators_module.ALL_NAMES if n in present]
    names += sorted(present - set(names))
    # Peers are the four known ones; any other name was a NAME=PATH build.
    allocators = [allocators_module.Allocator(n, None, n in allocators_module.PEER_LIBRARIES)
                  for n in names]
    old = directory / "summary.txt"
    header = old.read_text().splitlines()[:2] if old.is_file() else []
    write_report(directory, runs, allocators, header + [f"(report rebuilt from {path})"], against)
    log(f"results: {directory}")
    return 0


def run_micro(args, out_dir: Path) -> int:
    micro = programs.find_executables(args.build_dir / "bench", "bench_micro_")
    if not micro:
        log(f"no bench_micro_* in {args.build_dir / 'bench'}")
        return 1
    status = 0
    for name, path in micro.items():
        command = [str(path)]
        if args.micro_filter:
            command.append(f"--benchmark_filter={args.micro_filter}")
        log(f"=== {path.name}")
        done = subprocess.run(command, stdout=subprocess.PIPE, text=True,
                              env=allocators_module.Allocator("glibc", None).environment())
        print(done.stdout, end="", flush=True)
        (out_dir / f"micro_{name}.txt").write_text(done.stdout)
        if done.returncode != 0:
            log(f"{path.name}: exit {done.returncode}")
            status = 1
    log(f"results: {out_dir}")
    return status


def stop_on_signal(number, frame) -> None:
    raise KeyboardInterrupt


def main(argv: list[str]) -> int:
    # SIGTERM, SIGHUP and SIGINT (even when a non-interactive shell started us
    # with it ignored) stop the run the same way: the running workload's
    # process group is killed and the runs so far are reported.
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, stop_on_signal)
    args = parse_arguments(argv)
    args.build_dir = args.build_dir.resolve()
    bench_dir = args.build_dir / "bench"
    try:
        workloads = programs.find_workloads(bench_dir)
    except programs.DuplicateWorkload as error:
        log(f"run.py: {error}")
        return 2
    if args.report:
        return rebuild_report(args.report.resolve(), args.against)
    if args.list:
        print("workloads:", " ".join(workloads) or f"(none in {bench_dir})")
        micro = programs.find_executables(bench_dir, "bench_micro_")
        print("micro:", " ".join(micro) or "(none)")
        print("allocators:", " ".join(allocators_module.ALL_NAMES))
        return 0
    try:
        chosen = allocators_module.resolve(args.allocators, args.build_dir)
    except allocators_module.AllocatorError as error:
        log(f"run.py: {error}")
        return 2
    if len({a.name for a in chosen}) != len(chosen):
        log("run.py: an allocator is named twice in --allocators")
        return 2
    out_dir = (args.out_dir or default_out_dir()).resolve()

    if args.micro:
        out_dir.mkdir(parents=True, exist_ok=True)
        return run_micro(args, out_dir)
    if args.instructions:
        try:
            table = instructions.run(args.build_dir, chosen, args.sizes, args.patterns,
                                     args.count, out_dir, log)
        except instructions.InstructionsError as error:
            log(f"run.py: {error}")
            return 2
        print(table, end="")
        log(f"results: {out_dir}")
        return 0

    if not workloads:
        log(f"run.py: no workload programs (bench_*) in {bench_dir}; build the bench targets")
        return 2
    if args.workloads:
        unknown = [w for w in args.workloads if w not in workloads]
        if unknown:
            log(f"run.py: unknown workload(s) {', '.join(unknown)} "
                f"(found: {', '.join(workloads)})")
            return 2
        workloads = {w: workloads[w] for w in args.workloads}
    spawner = bench_dir / SPAWNER
    if not spawner.is_file():
        log(f"run.py: {spawner} not found; build the bench targets")
        return 2
    out_dir.mkdir(parents=True, exist_ok=True)
    return run_benchmarks(args, chosen, workloads, spawner, out_dir)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
