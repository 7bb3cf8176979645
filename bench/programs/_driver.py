"""Shared by the real-program workloads in bench/programs/ (see bench/README.md).

A driver script runs under the benchmark runner's Python *without* the
allocator under test. It gets that allocator as --preload=LIB (empty for
glibc) and gives it to the measured program alone, which it starts through
bench_runner_spawn (--spawner=PATH): that program then reports the measured
program's own peak RSS (ru_maxrss, which covers the children it waited for,
such as cc1plus under g++) and CPU time, untouched by the driver's Python
image. Helpers (redis-benchmark, redis-cli, the linker) run without the
preload.

A driver honours the workload contract of bench/workload_common.h: options
--threads=N --scale=F --seed=S, one `result` line on stdout on success with
the measured program's figures added as peak_rss_kib= and cpu_seconds=
(measure.py takes those instead of the driver's own), exit 3 with
"corruption detected" when the program's answer is wrong, exit 1 when the
program failed or could not be run, exit 2 on bad usage.
"""

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_WRONG = 3
# How long a measured program gets to exit after its work is done.
EXIT_GRACE_SECONDS = 30.0
MALLOC_SYMBOLS = ("malloc", "free", "calloc", "realloc")


def fail(message: str) -> None:
    """The program failed or could not be run: the run is a CRASH."""
    print(message, file=sys.stderr, flush=True)
    sys.exit(EXIT_FAILED)


def fail_wrong(what: str) -> None:
    """The program gave a wrong answer: the run is CORRUPT, never timed."""
    print(f"corruption detected\n{what}", file=sys.stderr, flush=True)
    sys.exit(EXIT_WRONG)


def expect(what: str, got, wanted) -> None:
    if got != wanted:
        fail_wrong(f"{what}: got {got!r}, expected {wanted!r}")


def parse_options(description: str, argv: list[str] | None = None) -> argparse.Namespace:
    """--threads, --scale, --seed as every workload has them, plus the
    spawner and the preload the runner passes to drivers."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--spawner", type=Path, required=True,
                        help="bench_runner_spawn from the build tree (<build>/bench)")
    parser.add_argument("--preload", default="",
                        help="the allocator library for the measured program; empty: glibc")
    try:
        options = parser.parse_args(argv)
    except SystemExit as exit_:
        sys.exit(EXIT_USAGE if exit_.code else 0)
    if options.threads < 1 or not options.scale > 0:
        print("--threads must be >= 1 and --scale > 0", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    if not os.access(options.spawner, os.X_OK):
        print(f"{options.spawner}: not an executable (build the bench targets)", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    return options


def scaled(base: int, scale: float) -> int:
    """base * scale rounded, at least 1, as workload_common.h sizes work."""
    return max(1, round(base * scale))


def require_program(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        fail(f"{name} is not installed (scripts/deps.sh installs it)")
    return path


def helper_environment(**extra: str) -> dict[str, str]:
    """The environment of everything that is not measured: no preload."""
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    env.update(extra)
    return env


def work_directory(name: str) -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix=f"hpcalloc-{name}-")


def _bindings(command: list[str], preload: str, env: dict[str, str]) -> set[tuple[str, str]]:
    """(binary, library) for every binding of malloc, free, calloc or
    realloc in every process of `command` run with `preload`, from the
    dynamic loader's own account (LD_DEBUG=bindings; LD_BIND_NOW binds every
    symbol at start, so a short run such as --version shows them all)."""
    with tempfile.TemporaryDirectory(prefix="hpcalloc-bindings-") as scratch:
        trace_env = dict(env, LD_DEBUG="bindings", LD_BIND_NOW="1",
                         LD_DEBUG_OUTPUT=str(Path(scratch) / "ld"))
        if preload:
            trace_env["LD_PRELOAD"] = preload
        subprocess.run(command, env=trace_env, stdin=subprocess.DEVNULL, cwd=scratch,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        # "binding file A [0] to B [0]: normal symbol `malloc' [GLIBC_2.2.5]"
        pattern = re.compile(r"binding file (\S+) \[\d+\] to (\S+) \[\d+\]: normal symbol "
                             r"`(?:" + "|".join(MALLOC_SYMBOLS) + r")'")
        found = set()
        for trace in Path(scratch).glob("ld.*"):
            for match in pattern.finditer(trace.read_text(errors="replace")):
                found.add((os.path.realpath(match.group(1)), os.path.realpath(match.group(2))))
    # A binding to a binary that does not define the symbol is to its PLT
    # entry, which stands for the function where an executable takes its
    # address (python3 does); that entry jumps on to the real provider.
    return {(binary, lib) for binary, lib in found if _defines_malloc(lib)}


_DEFINES_MALLOC: dict[str, bool] = {}


def _defines_malloc(library: str) -> bool:
    if library not in _DEFINES_MALLOC:
        listing = subprocess.run(["nm", "-D", "--defined-only", library], capture_output=True,
                                 text=True).stdout
        _DEFINES_MALLOC[library] = re.search(r" [TtWi] malloc(@|$)", listing, re.M) is not None
    return _DEFINES_MALLOC[library]


def system_libc(program: str) -> str:
    """The libc.so.6 that `program` loads, as ldd names it."""
    listing = subprocess.run(["ldd", program], capture_output=True, text=True).stdout
    match = re.search(r"libc\.so\.6 => (\S+)", listing)
    if match is None:
        fail(f"ldd {program}: no libc.so.6")
    return os.path.realpath(match.group(1))


def allocator_preload(options: argparse.Namespace, probe: list[str], env: dict[str, str],
                      must_cover: tuple[str, ...] = ()) -> str:
    """The LD_PRELOAD that makes the allocator under test serve the measured
    program, checked: `probe` (a quick run of the program, such as
    --version) must bind malloc, free, calloc and realloc to that allocator
    in every binary of every process, and those binaries must include each
    of `must_cover` (say, cc1plus under g++: proof that the preload reaches
    it). For glibc that is nothing, unless the program links another
    allocator ahead of libc (Debian's redis-server links libjemalloc): then
    libc.so.6 itself is preloaded, which puts it first in symbol lookup."""
    preload = options.preload
    if preload:
        wanted = os.path.realpath(preload)
    else:
        wanted = system_libc(probe[0])
        if {lib for _, lib in _bindings(probe, "", env)} != {wanted}:
            preload = wanted
    found = _bindings(probe, preload, env)
    providers = {lib for _, lib in found}
    if providers != {wanted}:
        fail(f"{probe[0]} with LD_PRELOAD='{preload}': malloc and free bind to "
             f"{', '.join(sorted(providers)) or 'nothing'}, not to {wanted}")
    binaries = {Path(binary).name for binary, _ in found}
    missing = [name for name in must_cover if name not in binaries]
    if missing:
        fail(f"{probe[0]} with LD_PRELOAD='{preload}': no malloc binding seen in "
             f"{', '.join(missing)}: the preload does not reach it")
    return preload


@dataclass
class Usage:
    """What bench_runner_spawn reports of one measured program."""
    status: int  # wait status
    maxrss_kib: int
    cpu_seconds: float

    def describe(self) -> str:
        if os.WIFSIGNALED(self.status):
            number = os.WTERMSIG(self.status)
            try:
                return f"killed by {signal.Signals(number).name}"
            except ValueError:
                return f"killed by signal {number}"
        return f"exit {os.WEXITSTATUS(self.status)}"

    @property
    def succeeded(self) -> bool:
        return os.WIFEXITED(self.status) and os.WEXITSTATUS(self.status) == 0


class Measured:
    """One measured program, started through bench_runner_spawn with the
    allocator preloaded. Stays in the driver's process group, so the
    runner's timeout (which kills that group) ends it too. As a context
    manager it kills the program on the way out if it is still running,
    whatever went wrong in between."""

    def __init__(self, options: argparse.Namespace, preload: str, command: list[str],
                 env: dict[str, str], scratch: Path, label: str, **popen_args):
        """Starts `command` with LD_PRELOAD=`preload` (from allocator_preload)
        and `env` (from helper_environment: the spawner itself runs without
        the allocator); `popen_args` go to subprocess.Popen (stdout, ...)."""
        self.label = label
        self._report = scratch / f"{label}.rusage"
        self._spawner = subprocess.Popen(
            [str(options.spawner), str(self._report), preload, *command], env=env,
            **popen_args)

    def __enter__(self) -> "Measured":
        return self

    def __exit__(self, *exc_info) -> None:
        if self._spawner.poll() is None:
            self.kill()

    def running(self) -> bool:
        return self._spawner.poll() is None

    def kill(self) -> None:
        """SIGKILL to the program (the spawner's child), then reaps the
        spawner, which exits once its child is gone. Tried again for a
        while: a spawner that has not forked yet has no child to kill."""
        for _ in range(50):
            for pid in _children(self._spawner.pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                self._spawner.wait(timeout=0.2)
                return
            except subprocess.TimeoutExpired:
                continue
        self._spawner.kill()
        self._spawner.wait()

    def wait(self, timeout: float = EXIT_GRACE_SECONDS) -> Usage:
        """Waits for the program to end (killing it after `timeout`) and
        returns its usage; fails the run if the spawner could not report."""
        try:
            self._spawner.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            fail(f"{self.label} still running {timeout:g} s after its work ended: killed")
        if self._spawner.returncode != 0 or not self._report.exists():
            fail(f"bench_runner_spawn failed for {self.label} (exit {self._spawner.returncode})")
        fields = dict(word.partition("=")[::2] for word in self._report.read_text().split())
        return Usage(int(fields["status"]), int(fields["maxrss_kib"]),
                     float(fields["utime"]) + float(fields["stime"]))


def _children(pid: int) -> list[int]:
    """Processes whose parent is `pid`, from /proc/<n>/stat."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: fields follow the last ')'.
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def require_success(usage: Usage, label: str, stderr_path: Path | None = None) -> None:
    """Fails the run (CRASH) unless the measured program exited 0: the end
    of its output first, the reason last (the runner shows the last line)."""
    if usage.succeeded:
        return
    tail = ""
    if stderr_path is not None and stderr_path.exists():
        lines = stderr_path.read_text(errors="replace").strip().splitlines()[-10:]
        tail = "".join(f"  {line}\n" for line in lines)
    fail(f"{tail}{label} failed: {usage.describe()}")


def print_result(workload: str, options: argparse.Namespace, seconds: float, ops: int,
                 usages: list[Usage], extra: dict[str, str] | None = None) -> None:
    """The result line, with the measured programs' peak RSS (the largest)
    and CPU time (the sum) in place of the driver's."""
    fields = {
        "workload": workload,
        "threads": str(options.threads),
        "seconds": f"{seconds:.6f}",
        "ops": str(ops),
        "peak_rss_kib": str(max(u.maxrss_kib for u in usages)),
        "cpu_seconds": f"{sum(u.cpu_seconds for u in usages):.6f}",
    }
    fields.update(extra or {})
    print("result " + " ".join(f"{k}={v}" for k, v in fields.items()), flush=True)


class Stopwatch:
    """Wall-clock seconds of the measured phases, added up."""

    def __init__(self):
        self.seconds = 0.0
        self._started = None

    def __enter__(self) -> "Stopwatch":
        self._started = time.monotonic()
        return self

    def __exit__(self, *exc_info) -> None:
        self.seconds += time.monotonic() - self._started
