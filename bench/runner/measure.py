"""One run of one workload program, as its own process, and what came of it.

The time is what the workload reports on its `result` line (it times its own
measured phase, without process start-up); the peak resident set size is the
workload's ru_maxrss from wait4. The run is started through
bench_runner_spawn (spawn.c), a small parent that forks the workload and
reports that rusage: a child forked from this Python process would count the
interpreter's own memory in its ru_maxrss. A real-program driver
(bench/programs/, programs.py) reports its measured program's peak RSS and
CPU time on the result line instead. A run that does not end cleanly is
classified, never dropped:
  CORRUPT  exit 3: the workload found its memory changed behind its back (or
           a real program gave a wrong answer)
  TIMEOUT  still running after the time limit: its process group is killed
  CRASH    any other outcome: a signal, another exit code, or exit 0
           without a well-formed result line
"""

import os
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

OK = "ok"
CRASH = "CRASH"
CORRUPT = "CORRUPT"
TIMEOUT = "TIMEOUT"

EXIT_CORRUPTION = 3
EXIT_USAGE = 2
REQUIRED_KEYS = ("workload", "threads", "seconds", "ops")


@dataclass
class RunResult:
    status: str
    seconds: float | None = None  # the workload's own measurement
    ops: int | None = None
    peak_rss_kib: int | None = None  # None when the run was killed
    wall_seconds: float = 0.0  # process start to exit, as the runner saw it
    cpu_seconds: float = 0.0  # user + system time of the child
    extra: dict[str, str] = field(default_factory=dict)  # other key=value fields
    detail: str = ""  # why a run failed, for the progress line
    stderr: str = ""  # kept for failed runs

    @property
    def ok(self) -> bool:
        return self.status == OK


def parse_result_line(stdout: str) -> dict[str, str] | None:
    """The key=value fields of the last `result ...` line, or None."""
    for line in reversed(stdout.splitlines()):
        words = line.split()
        if words and words[0] == "result":
            fields = {}
            for word in words[1:]:
                key, sep, value = word.partition("=")
                if not sep:
                    return None
                fields[key] = value
            return fields
    return None


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1].strip()[:160] if lines else ""


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def run_workload(spawner: Path, command: list[str], env: dict[str, str],
                 timeout: float) -> RunResult:
    """Runs `command` through `spawner` in a new session with `env` (whose
    LD_PRELOAD goes to the workload only) and returns the classified result.
    Output goes to temporary files, so a chatty program cannot block on a
    full pipe."""
    env = dict(env)
    preload = env.pop("LD_PRELOAD", "")
    with tempfile.TemporaryDirectory(prefix="hpcalloc-bench-") as scratch:
        report_path = Path(scratch) / "rusage"
        with open(Path(scratch) / "out", "w+b") as out, open(Path(scratch) / "err", "w+b") as err:
            started = time.monotonic()
            process = subprocess.Popen(
                [str(spawner), str(report_path), preload, *command], env=env,
                stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True)
            spawner_status, timed_out = _wait_with_timeout(process, timeout)
            wall = time.monotonic() - started
            out.seek(0)
            err.seek(0)
            stdout = out.read().decode(errors="replace")
            stderr = err.read().decode(errors="replace")
        report = report_path.read_text() if report_path.exists() else ""

    result = RunResult(status=OK, wall_seconds=wall)
    usage = dict(word.partition("=")[::2] for word in report.split())
    if timed_out:
        result.status, result.detail = TIMEOUT, f"killed after {timeout:g} s"
    elif spawner_status != 0 or "status" not in usage:
        result.status = CRASH
        result.detail = f"bench_runner_spawn failed: {_last_line(stderr)}"
    else:
        result.peak_rss_kib = int(usage["maxrss_kib"])
        result.cpu_seconds = float(usage["utime"]) + float(usage["stime"])
        _classify(result, int(usage["status"]), stdout, stderr)
    if not result.ok:
        result.stderr = stderr
    return result


def _classify(result: RunResult, status: int, stdout: str, stderr: str) -> None:
    if os.WIFSIGNALED(status):
        result.status = CRASH
        result.detail = _signal_name(os.WTERMSIG(status))
    elif os.WEXITSTATUS(status) == EXIT_CORRUPTION:
        result.status, result.detail = CORRUPT, _last_line(stderr) or "exit 3"
    elif os.WEXITSTATUS(status) != 0:
        code = os.WEXITSTATUS(status)
        why = " (bad usage)" if code == EXIT_USAGE else ""
        result.status = CRASH
        result.detail = f"exit {code}{why}: {_last_line(stderr)}".rstrip(": ")
    else:
        _read_result(result, stdout)


def _read_result(result: RunResult, stdout: str) -> None:
    fields = parse_result_line(stdout)
    if fields is None or any(key not in fields for key in REQUIRED_KEYS):
        result.status, result.detail = CRASH, "exit 0 without a result line"
        return
    try:
        result.seconds = float(fields["seconds"])
        result.ops = int(fields["ops"])
    except ValueError:
        result.status, result.detail = CRASH, "malformed result line"
        return
    # A real-program driver (bench/programs/) starts the measured program
    # itself and reports that program's peak RSS and CPU time: the spawner's
    # figures would include the driver's own Python and its helpers.
    try:
        if "peak_rss_kib" in fields:
            result.peak_rss_kib = int(fields.pop("peak_rss_kib"))
        if "cpu_seconds" in fields:
            result.cpu_seconds = float(fields.pop("cpu_seconds"))
    except ValueError:
        result.status, result.detail = CRASH, "malformed result line"
        return
    result.extra = {k: v for k, v in fields.items() if k not in REQUIRED_KEYS}


def _wait_with_timeout(process: subprocess.Popen, timeout: float) -> tuple[int, bool]:
    """(exit code, timed out?) of `process`. The watchdog kills the
    process group only while the child is unreaped: waitid(WNOWAIT) leaves it
    a zombie, so its pid and group cannot have been reused, until `done` is
    set under the lock; only then does wait4 reap it."""
    lock = threading.Lock()
    done = False
    timed_out = False

    def kill_group():
        nonlocal timed_out
        with lock:
            if not done:
                timed_out = True
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    watchdog = threading.Timer(timeout, kill_group)
    watchdog.start()
    try:
        while True:
            try:
                os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)
                break
            except InterruptedError:
                continue
        with lock:
            done = True
        watchdog.cancel()
        # Whatever is left of the group (the workload, if the spawner was
        # killed; anything the workload forked) dies with it.
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        _, status, _ = os.wait4(process.pid, 0)
    except BaseException:
        # Interrupted (Ctrl-C): take the child down with us.
        watchdog.cancel()
        try:
            os.killpg(process.pid, signal.SIGKILL)
            os.wait4(process.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        raise
    process.returncode = os.waitstatus_to_exitcode(status)  # Popen must not reap it again
    return process.returncode, timed_out
