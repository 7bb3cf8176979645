"""The workloads the runner finds: the compiled workload programs
(<build>/bench/bench_<name>) and the real-program drivers
(bench/programs/<name>.py, which run redis-server, sqlite3, python3, g++).

Both take the same options and print the same result line, so the rest of
the runner treats them alike; they differ only in how a run is started. A
compiled workload is itself the measured program and gets the allocator
through LD_PRELOAD. A driver must not run under the allocator under test
(its own Python, redis-benchmark, the linker are not what is measured): it
runs without LD_PRELOAD, gets the library as --preload=LIB and the spawner
as --spawner=PATH, and preloads the library into the measured program only
(bench/programs/_driver.py).
"""

import os
import sys
from dataclasses import dataclass
from pathlib import Path

# Drivers live in the source tree; files starting with "_" are their helpers.
DRIVER_DIR = Path(__file__).resolve().parent.parent / "programs"
# Programs in <build>/bench that are not workloads.
HELPER_PREFIXES = ("bench_micro_", "bench_instr_", "bench_runner_")


@dataclass(frozen=True)
class Workload:
    name: str
    path: Path
    is_driver: bool  # bench/programs/<name>.py rather than bench_<name>

    def launch(self, threads: int, scale: float, seed: int, env: dict[str, str],
               spawner: Path) -> tuple[list[str], dict[str, str]]:
        """The command and environment of one run; `env` carries the
        allocator as LD_PRELOAD (Allocator.environment)."""
        options = [f"--threads={threads}", f"--scale={scale:g}", f"--seed={seed}"]
        if not self.is_driver:
            return [str(self.path), *options], env
        env = dict(env)
        preload = env.pop("LD_PRELOAD", "")
        return ([sys.executable, str(self.path), *options, f"--spawner={spawner}",
                 f"--preload={preload}"], env)


def find_executables(bench_dir: Path, prefix: str) -> dict[str, Path]:
    """name -> executable for every file bench_dir/<prefix><name>."""
    if not bench_dir.is_dir():
        return {}
    return {p.name[len(prefix):]: p for p in sorted(bench_dir.iterdir())
            if p.name.startswith(prefix) and p.is_file() and os.access(p, os.X_OK)}


def find_drivers(directory: Path = DRIVER_DIR) -> dict[str, Path]:
    """name -> script for every directory/<name>.py not starting with "_"."""
    if not directory.is_dir():
        return {}
    return {p.stem: p for p in sorted(directory.glob("*.py")) if not p.name.startswith("_")}


class DuplicateWorkload(Exception):
    """A driver and a compiled workload have the same name."""


def find_workloads(bench_dir: Path, driver_dir: Path = DRIVER_DIR) -> dict[str, Workload]:
    """Every workload: the compiled ones of bench_dir (when built), then the
    drivers. Raises DuplicateWorkload when a name is taken twice."""
    workloads = {name: Workload(name, path, False)
                 for name, path in find_executables(bench_dir, "bench_").items()
                 if not path.name.startswith(HELPER_PREFIXES)}
    for name, path in find_drivers(driver_dir).items():
        if name in workloads:
            raise DuplicateWorkload(f"workload '{name}' is both {workloads[name].path} and "
                                    f"{path}: rename one")
        workloads[name] = Workload(name, path, True)
    return workloads
