#!/usr/bin/env python3
"""python: Debian's python3 with PYTHONMALLOC=malloc running an
allocation-heavy script (_python_work.py) under the allocator.

PYTHONMALLOC=malloc sends every Python object to malloc/free instead of
pymalloc's arenas, so the allocator under test serves them all. The script
builds and drops binary trees of small objects (every eighth kept), counts
words in a dict, builds CSV text and parses it back, sorts (int, str)
tuples and runs a sliding window of small lists in a dict: 300000 x scale
items, shared out over --threads Python threads (they take turns under the
GIL; the main thread frees what they built).
Measured: the script's own timing of its work (without the interpreter's
start-up); ops are the items; peak RSS and CPU time are python3's.
Checked: every figure the script prints equals its closed form, computed
here (tree nodes, word counts, sums of i and i*i, sortedness, the window).
"""

import sys
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ beside the drivers
import _driver  # noqa: E402

PYTHON = "/usr/bin/python3"  # Debian's, not whatever python3 is first on PATH
SCRIPT = Path(__file__).resolve().parent / "_python_work.py"
BASE_ITEMS = 300000
TREE_DEPTH = 12  # as in _python_work.py
WINDOW = 1000


def expected_figures(threads: int, items: int, seed: int) -> dict[str, int]:
    distinct = 1000 + seed % 1000
    tree_count = items // 2000
    tree_nodes = 2 ** (TREE_DEPTH + 1) - 1
    shares = [range(t, items, threads) for t in range(threads)]
    triangle = items * (items - 1) // 2
    return {
        "nodes": tree_count * tree_nodes,
        "kept_nodes": -(-tree_count // 8) * tree_nodes,
        "words": min(items, distinct),
        "word_total": items,
        "word_min": items // distinct,
        "word_max": -(-items // distinct),
        "record_sum": triangle,
        "record_squares": (items - 1) * items * (2 * items - 1) // 6,
        "disorder": 0,
        "key_sum": triangle,
        "label_sum": triangle,
        "window_left": sum(min(len(share), WINDOW) for share in shares),
        "window_keys": sum(sum(share[-WINDOW:]) for share in shares),
    }


def main() -> None:
    options = _driver.parse_options(__doc__.split("\n\n")[0])
    if not Path(PYTHON).is_file():
        _driver.fail(f"{PYTHON} is not installed (scripts/deps.sh installs python3)")
    env = _driver.helper_environment(PYTHONMALLOC="malloc", PYTHONHASHSEED="0")
    # -S -s: no site packages, so nothing but the script runs; -B: no .pyc.
    command = [PYTHON, "-S", "-s", "-B"]
    preload = _driver.allocator_preload(options, [*command, "-c", "pass"], env)
    items = _driver.scaled(BASE_ITEMS, options.scale)
    command += [str(SCRIPT), str(options.threads), str(items), str(options.seed)]

    with _driver.work_directory("python") as scratch_name:
        scratch = Path(scratch_name)
        with open(scratch / "out", "wb") as out, open(scratch / "err", "wb") as err, \
                _driver.Measured(options, preload, command, env, scratch, "python3",
                                 stdout=out, stderr=err) as program:
            usage = program.wait(timeout=600)
        _driver.require_success(usage, "python3", scratch / "err")
        lines = (scratch / "out").read_text(errors="replace").split("\n")
    words = next((line.split() for line in lines if line.startswith("python_work ")), None)
    if words is None:
        _driver.fail_wrong(f"python3 printed no figures: {lines[:3]!r}")
    got = dict(word.partition("=")[::2] for word in words[1:])
    try:
        seconds = float(got.pop("seconds"))
        figures = {key: int(value) for key, value in got.items()}
    except (KeyError, ValueError):
        _driver.fail_wrong(f"python3 printed malformed figures: {' '.join(words)}")
    wanted = expected_figures(options.threads, items, options.seed)
    for key, value in wanted.items():
        _driver.expect(f"python3 figure {key}", figures.get(key), value)
    _driver.expect("python3 figures", sorted(figures), sorted(wanted))
    _driver.print_result("python", options, seconds, items, [usage])


if __name__ == "__main__":
    main()
