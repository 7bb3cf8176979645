"""The allocation-heavy script that bench/programs/python.py measures: run
by /usr/bin/python3 with PYTHONMALLOC=malloc, so that every object below
(nodes, lists, dicts, strings, ints, tuples) is a malloc/free of the
allocator under test rather than a block of Python's own pymalloc arenas.

  python3 _python_work.py THREADS ITEMS SEED

Five tasks, each split over THREADS Python threads by item number (they
take turns under the GIL, so the allocator sees several threads allocate,
and the main thread frees what the workers built when it merges their
results). Prints one line of figures that python.py compares with closed
forms; this file shares no code with it, so a wrong figure cannot be
matched by the same mistake.
"""

import sys
import threading
import time

TREE_DEPTH = 12
SORT_MULTIPLIER = 1000003  # a prime: i -> i * m % n is a permutation when n is not a multiple


class Node:
    def __init__(self, left, right, depth):
        self.left, self.right, self.depth = left, right, depth


def build_tree(depth: int) -> Node:
    if depth == 0:
        return Node(None, None, 0)
    return Node(build_tree(depth - 1), build_tree(depth - 1), depth)


def count_nodes(node: Node) -> int:
    if node.left is None:
        return 1
    return 1 + count_nodes(node.left) + count_nodes(node.right)


def trees(share: range) -> tuple[int, list[Node]]:
    """Complete binary trees, most dropped at once, every eighth kept."""
    nodes, kept = 0, []
    for i in share:
        tree = build_tree(TREE_DEPTH)
        nodes += count_nodes(tree)
        if i % 8 == 0:
            kept.append(tree)
    return nodes, kept


def words(share: range, distinct: int, multiplier: int) -> dict[str, int]:
    """Word counts: word k = i * multiplier % distinct, with a varying tail."""
    counts: dict[str, int] = {}
    for i in share:
        k = i * multiplier % distinct
        word = f"w{k}-" + "ab" * (k % 7)
        counts[word] = counts.get(word, 0) + 1
    return counts


def records(share: range) -> tuple[int, int]:
    """CSV text built, joined, split and parsed back: sums of i and i*i."""
    lines = [f"{i},{i * i},name-{i}" for i in share]
    text = "\n".join(lines)
    total = squares = 0
    for line in text.split("\n"):
        first, second, _ = line.split(",")
        total += int(first)
        squares += int(second)
    return total, squares


def sorting(share: range, n: int) -> tuple[int, int, int]:
    """(key, label) tuples sorted; (pairs out of order, sum of keys, sum of
    labels parsed back)."""
    pairs = sorted((i * SORT_MULTIPLIER % n, str(i)) for i in share)
    disorder = sum(1 for a, b in zip(pairs, pairs[1:]) if a[0] >= b[0])
    return disorder, sum(k for k, _ in pairs), sum(int(label) for _, label in pairs)


def window(share: range, width: int) -> tuple[int, int]:
    """A sliding window of small lists in a dict: insert one, delete the
    one `width` earlier; (entries left, sum of their keys)."""
    live: dict[int, list[int]] = {}
    previous = []
    for i in share:
        live[i] = [i, i + 1, i + 2]
        previous.append(i)
        if len(previous) > width:
            del live[previous[len(previous) - width - 1]]
    return len(live), sum(live)


def main() -> None:
    threads, items, seed = (int(v) for v in sys.argv[1:4])
    distinct = 1000 + seed % 1000
    multiplier = 7919 if distinct % 7919 else 104729
    width = 1000
    shares = [range(t, items, threads) for t in range(threads)]
    tree_count = items // 2000
    results: list[dict] = [{} for _ in range(threads)]

    def work(t: int) -> None:
        share = shares[t]
        out = results[t]
        out["nodes"], out["kept"] = trees(range(t, tree_count, threads))
        out["words"] = words(share, distinct, multiplier)
        out["records"] = records(share)
        out["sorting"] = sorting(share, items)
        out["window"] = window(share, width)

    started = time.perf_counter()
    pool = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    # The main thread merges, then drops, what the workers built.
    merged: dict[str, int] = {}
    for out in results:
        for word, count in out["words"].items():
            merged[word] = merged.get(word, 0) + count
    kept_nodes = sum(count_nodes(tree) for out in results for tree in out["kept"])
    figures = {
        "nodes": sum(out["nodes"] for out in results),
        "kept_nodes": kept_nodes,
        "words": len(merged),
        "word_total": sum(merged.values()),
        "word_min": min(merged.values()),
        "word_max": max(merged.values()),
        "record_sum": sum(out["records"][0] for out in results),
        "record_squares": sum(out["records"][1] for out in results),
        "disorder": sum(out["sorting"][0] for out in results),
        "key_sum": sum(out["sorting"][1] for out in results),
        "label_sum": sum(out["sorting"][2] for out in results),
        "window_left": sum(out["window"][0] for out in results),
        "window_keys": sum(out["window"][1] for out in results),
    }
    results.clear()
    merged.clear()
    seconds = time.perf_counter() - started
    print("python_work " + " ".join(f"{k}={v}" for k, v in figures.items())
          + f" seconds={seconds:.6f}", flush=True)


if __name__ == "__main__":
    main()
