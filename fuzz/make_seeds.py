#!/usr/bin/env python3
"""Writes the seed corpora (fuzz/corpus/<harness>/) and c_api.dict.

Each seed is a short program in its harness's input encoding (see the
decoders in the *_fuzz.cpp files: an opcode byte, then its operands), chosen
so a campaign starts from every operation and from the size edges instead of
having to discover them. Regenerate after changing an encoding:
    python3 fuzz/make_seeds.py
The output is deterministic; the files are tiny and committed.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

# ---- c_api_fuzz: opcodes and selectors as decoded in c_api_fuzz.cpp -------
(MALLOC, CALLOC, REALLOC, REALLOCARRAY, FREE, MEMALIGN, POSIX_MEMALIGN,
 ALIGNED_ALLOC, VALLOC, PVALLOC, USABLE_SIZE, FREE_SIZED, FREE_ALIGNED_SIZED,
 MALLOC_TRIM, FREE_ON_WORKER, FREE_ON_SHORT_LIVED, MALLOC_ON_WORKER,
 REALLOC_ON_WORKER, CHECK_ALL,
 # Misuse (c_api_misuse_ops.h; they run only with HPCALLOC_ON_ERROR=warn).
 DOUBLE_FREE, DOUBLE_FREE_ON_WORKER, INTERIOR_FREE, INTERIOR_FREE_ON_WORKER,
 REALLOC_FREED, USABLE_SIZE_FREED, BATCH_FREE_ON_WORKER) = range(26)
OP_COUNT = 26
SMALL_MAX, MEDIUM_MAX = 1024, 1 << 20


def u16(v):
    return struct.pack("<H", v & 0xFFFF)


def u32(v):
    return struct.pack("<I", v & 0xFFFFFFFF)


def zero():
    return bytes([0])


def small(n):  # 1 <= n <= 1024
    return bytes([2]) + u16(n - 1)


def boundary(size_class, delta):  # class size + delta, delta in -1..1
    return bytes([5, size_class, delta + 1])


def edge(i):
    return bytes([6, i])


def medium(n):  # 1025 <= n <= 1 MiB
    return bytes([7]) + u32(n - SMALL_MAX - 1)


def huge(n):  # 1 MiB + 1 .. 4 MiB
    return bytes([10]) + u32(n - MEDIUM_MAX - 1)


def impossible(i):
    return bytes([13, i])


def align_pow2(k):
    return bytes([4 * k])


def align_odd(i):
    return bytes([3, i])


def op(code, *parts):
    return bytes([code]) + b"".join(parts)


def slot(i):
    return bytes([i])


def grave(i):  # the i-th block the input freed (of the last 8)
    return bytes([i])


INTERIOR_OFFSETS = (1, 8, 16, 24, 4096)


def interior(offset):
    return bytes([INTERIOR_OFFSETS.index(offset)])


def batch_small(n):  # a batch block of 1 <= n <= 1024 bytes
    return bytes([0]) + u16(n - 1)


def batch_medium(n):  # 4096, 4097, 32768 or 65536
    return bytes([5, (4096, 4097, 32768, 65536).index(n)])


NONE, P_Q_P, AGAIN_AT_END, AGAIN_IN_SECOND_BATCH, INTERIOR_POINTER = range(5)


def batch(sizes, pattern, target=0, split_after=0, offset=16):
    """The worker frees len(sizes) blocks of this thread in one batch; see
    MisuseOps::batch_free for the patterns. The second batch (pattern 3)
    starts at block target + 1 + split_after % (n - target)."""
    assert 1 <= len(sizes) <= 70
    return (bytes([BATCH_FREE_ON_WORKER, len(sizes) - 1, pattern, target, split_after,
                   1 if offset == 16 else 0]) + b"".join(sizes))


C_API = {
    "malloc_free_each_kind": b"".join(
        [op(MALLOC, slot(0), small(24)), op(MALLOC, slot(1), medium(5000)),
         op(MALLOC, slot(2), huge(3 << 20)), op(MALLOC, slot(3), zero()),
         op(FREE, slot(1)), op(FREE, slot(0)), op(FREE, slot(2))]),
    "realloc_across_kinds": b"".join(
        [op(MALLOC, slot(4), small(100)), op(REALLOC, slot(4), medium(4000)),
         op(REALLOC, slot(4), huge(2 << 20)), op(REALLOC, slot(4), huge(3 << 20)),
         op(REALLOC, slot(4), small(8)), op(REALLOC, slot(4), zero())]),
    "aligned_family": b"".join(
        [op(MEMALIGN, slot(5), align_pow2(6), small(100)),
         op(POSIX_MEMALIGN, slot(6), align_pow2(12), medium(9000)),
         op(ALIGNED_ALLOC, slot(7), align_pow2(21), small(1)),
         op(VALLOC, slot(8), small(5)), op(PVALLOC, slot(9), zero()),
         op(FREE_ALIGNED_SIZED, slot(7)), op(FREE_SIZED, slot(5))]),
    "bad_alignments": b"".join(
        [op(MEMALIGN, slot(1), align_odd(i), small(64)) for i in range(14)] +
        [op(POSIX_MEMALIGN, slot(2), align_odd(i), small(64)) for i in range(14)]),
    "impossible_sizes": b"".join(
        [op(MALLOC, slot(3), impossible(i)) for i in range(11)] +
        [op(CALLOC, slot(3), bytes([1, i]), impossible(i % 11)) for i in range(12)] +
        [op(PVALLOC, slot(3), impossible(i)) for i in range(11)]),
    "size_edges": b"".join(
        [op(MALLOC, slot(i), edge(i)) for i in range(20)] +
        [op(USABLE_SIZE, slot(i)) for i in range(20)]),
    "class_boundaries": b"".join(
        [op(MALLOC, slot(c % 32), boundary(c, (c % 3) - 1)) for c in range(32)]),
    "calloc_and_reallocarray": b"".join(
        [op(CALLOC, slot(1), bytes([0, 10]), small(100)),
         op(CALLOC, slot(2), bytes([1, 7]), medium(2000)),
         op(REALLOCARRAY, slot(1), bytes([4]), small(1000)),
         op(REALLOCARRAY, slot(2), bytes([9]), impossible(0))]),
    "cross_thread": b"".join(
        [op(MALLOC, slot(1), small(48)), op(FREE_ON_WORKER, slot(1), bytes([0])),
         op(MALLOC, slot(2), medium(3000)), op(FREE_ON_SHORT_LIVED, slot(2), bytes([1])),
         op(MALLOC_ON_WORKER, slot(3), small(200)), op(REALLOC, slot(3), medium(7000)),
         op(MALLOC, slot(4), medium(20000)), op(REALLOC_ON_WORKER, slot(4), small(10)),
         op(MALLOC_ON_WORKER, slot(5), huge(2 << 20)), op(FREE, slot(5)),
         op(MALLOC_TRIM, bytes([0])), op(CHECK_ALL)]),
    "every_op": b"".join(bytes([code, 1]) + small(32) for code in range(OP_COUNT)),
    # Misuse: each seed is also a ctest test of its own (fuzz/CMakeLists.txt).
    "misuse_double_free_small": b"".join(
        [op(MALLOC, slot(1), small(48)), op(FREE, slot(1)), op(DOUBLE_FREE, grave(0))]),
    "misuse_double_free_medium": b"".join(
        [op(MALLOC, slot(1), medium(4096)), op(MALLOC, slot(2), medium(65536)),
         op(FREE, slot(1)), op(FREE, slot(2)), op(DOUBLE_FREE, grave(0)),
         op(DOUBLE_FREE, grave(1))]),
    "misuse_double_free_huge": b"".join(
        [op(MALLOC, slot(1), huge(3 << 20)), op(FREE, slot(1)), op(DOUBLE_FREE, grave(0))]),
    "misuse_double_free_after_other_calls": b"".join(
        [op(MALLOC, slot(1), small(64)), op(FREE, slot(1)), op(MALLOC, slot(2), small(64)),
         op(MALLOC, slot(3), medium(5000)), op(FREE, slot(3)), op(MALLOC, slot(4), small(64)),
         op(DOUBLE_FREE, grave(0)), op(DOUBLE_FREE, grave(1)), op(CHECK_ALL)]),
    "misuse_double_free_on_worker": b"".join(
        [op(MALLOC, slot(1), small(48)), op(FREE, slot(1)),
         op(DOUBLE_FREE_ON_WORKER, grave(0))]),
    # Freed on the worker (held in its batch), then here: the worker's push
    # writes its link into the block this thread has freed meanwhile.
    "misuse_double_free_small_on_worker_then_here": b"".join(
        [op(MALLOC, slot(1), small(48)), op(FREE_ON_WORKER, slot(1), bytes([0])),
         op(DOUBLE_FREE, grave(0))]),
    "misuse_double_free_huge_on_worker_then_here": b"".join(
        [op(MALLOC, slot(1), huge(2 << 20)), op(FREE_ON_WORKER, slot(1), bytes([0])),
         op(DOUBLE_FREE, grave(0))]),
    "misuse_interior_free": b"".join(
        [op(MALLOC, slot(1), small(100)), op(INTERIOR_FREE, slot(1), interior(16)),
         op(MALLOC, slot(2), medium(4096)), op(INTERIOR_FREE, slot(2), interior(1)),
         op(MALLOC, slot(3), huge(2 << 20)), op(INTERIOR_FREE, slot(3), interior(4096))]),
    "misuse_interior_free_on_worker": b"".join(
        [op(MALLOC, slot(1), small(100)), op(INTERIOR_FREE_ON_WORKER, slot(1), interior(16))]),
    "misuse_realloc_freed_small": b"".join(
        [op(MALLOC, slot(1), small(48)), op(FREE, slot(1)),
         op(REALLOC_FREED, grave(0), small(8))]),
    "misuse_realloc_freed_small_grow": b"".join(
        [op(MALLOC, slot(1), small(48)), op(FREE, slot(1)),
         op(REALLOC_FREED, grave(0), small(100))]),
    "misuse_realloc_freed_medium": b"".join(
        [op(MALLOC, slot(1), medium(4096)), op(FREE, slot(1)),
         op(REALLOC_FREED, grave(0), small(8))]),
    "misuse_realloc_freed_huge": b"".join(
        [op(MALLOC, slot(1), huge(2 << 20)), op(FREE, slot(1)),
         op(REALLOC_FREED, grave(0), huge(3 << 20))]),
    "misuse_usable_size_freed_small": b"".join(
        [op(MALLOC, slot(1), small(48)), op(FREE, slot(1)), op(USABLE_SIZE_FREED, grave(0))]),
    "misuse_usable_size_freed_medium": b"".join(
        [op(MALLOC, slot(1), medium(4096)), op(FREE, slot(1)), op(USABLE_SIZE_FREED, grave(0))]),
    "misuse_usable_size_freed_huge": b"".join(
        [op(MALLOC, slot(1), huge(2 << 20)), op(FREE, slot(1)), op(USABLE_SIZE_FREED, grave(0))]),
    "misuse_batch_p_q_p_chain": batch([batch_small(48)] * 3, P_Q_P),
    "misuse_batch_p_q_p_carrier": batch([batch_small(48)] * 20, P_Q_P, target=5),
    "misuse_batch_again_at_end_chain": batch([batch_small(32), batch_medium(4096)], AGAIN_AT_END),
    "misuse_batch_second_batch_chains": batch([batch_small(48)] * 3, AGAIN_IN_SECOND_BATCH),
    "misuse_batch_second_batch_carriers": batch(
        [batch_small(48)] * 30, AGAIN_IN_SECOND_BATCH, target=3, split_after=11),
    "misuse_batch_interior_pointer_chain": batch([batch_small(100)] * 3, INTERIOR_POINTER),
    "misuse_batch_interior_pointer_plus_1_chain": batch(
        [batch_small(100)] * 3, INTERIOR_POINTER, offset=1),
    "misuse_batch_70_repeat_across_the_64_boundary": batch(
        [batch_small(24)] * 70, P_Q_P, target=62),
    "batch_carrier": batch([batch_small(40)] * 40 + [batch_medium(65536)], NONE),
}

# ---- medium_free_lists_fuzz: add_region, allocate, ... --------------------
M_ADD, M_ALLOC, M_ALIGNED, M_FREE, M_RESIZE, M_REMOVE, M_USABLE, M_STALE, M_CHECK = range(9)
MEDIUM = {
    "split_and_merge": b"".join(
        [bytes([M_ADD, 0, 1]) + u32(200000)] +
        [bytes([M_ALLOC, 1]) + u16(100 * (i + 1)) for i in range(8)] +
        [bytes([M_FREE, i]) for i in (3, 1, 2, 0)] + [bytes([M_STALE, 0, 0])]),
    "aligned_and_resize": b"".join(
        [bytes([M_ADD, 1, 3]) + u32(65536), bytes([M_ALIGNED, 12, 1]) + u16(3000),
         bytes([M_RESIZE, 0, 1]) + u16(4000), bytes([M_RESIZE, 0, 0, 16]),
         bytes([M_USABLE, 0]), bytes([M_REMOVE, 1])]),
    "whole_region": b"".join(
        [bytes([M_ADD, 2, 0]) + u32(262144), bytes([M_ALLOC, 3, 0]), bytes([M_CHECK, 0]),
         bytes([M_FREE, 0]), bytes([M_REMOVE, 2])]),
}

# ---- registry_fuzz: assign, clear, lookup, check a range ------------------
REGISTRY = {
    "assign_clear_lookup": b"".join(
        [bytes([0]) + u16(10) + bytes([1, 20, 0, 3]),
         bytes([0]) + u16(250) + bytes([1, 12, 0, 4]),
         bytes([1]) + u16(12) + bytes([1, 5]),
         bytes([2, 1]) + u32(11 << 12), bytes([3]) + u16(0) + bytes([1, 39])]),
    "limit_and_refusal": b"".join(
        [bytes([0]) + u16(4090) + bytes([1, 20, 0, 1]),
         bytes([0]) + u16(1000) + bytes([1, 30, 0, 2]),
         bytes([0]) + u16(3000) + bytes([0]) + u16(600) + bytes([0, 5]),
         bytes([2, 0]) + struct.pack("<Q", 1 << 24)]),
}

SIZE_CLASSES = {
    "boundaries": b"".join(u16(n) + bytes([a, h])
                           for h in range(5)
                           for n, a in ((0, 0), (128, 4), (129, 7), (1024, 10), (1025, 3),
                                        (32768, 15))),
}


def write_corpus(harness, seeds):
    folder = os.path.join(HERE, "corpus", harness)
    os.makedirs(folder, exist_ok=True)
    for name, data in sorted(seeds.items()):
        with open(os.path.join(folder, name), "wb") as f:
            f.write(data)


def write_dict():
    entries = []
    for i in range(11):
        entries.append(("impossible_size_%d" % i, impossible(i)))
    for i in range(20):
        entries.append(("size_edge_%d" % i, edge(i)))
    for i in range(14):
        entries.append(("odd_alignment_%d" % i, align_odd(i)))
    for name, part in (("huge_2mib", huge(2 << 20)), ("medium_64kib", medium(65536)),
                       ("small_max", small(SMALL_MAX)), ("size_zero", zero())):
        entries.append((name, part))
        entries.append(("malloc_" + name, op(MALLOC, slot(0), part)))
        entries.append(("realloc_" + name, op(REALLOC, slot(0), part)))
    entries.append(("free_then_double_free", op(FREE, slot(0)) + op(DOUBLE_FREE, grave(0))))
    entries.append(("batch_p_q_p", bytes([BATCH_FREE_ON_WORKER, 2, P_Q_P, 0, 0, 0])))
    with open(os.path.join(HERE, "c_api.dict"), "w") as f:
        f.write("# libFuzzer dictionary for c_api_fuzz, written by make_seeds.py: operand\n")
        f.write("# selectors that reach size and alignment edges, and whole operations.\n")
        for name, data in entries:
            f.write('%s="%s"\n' % (name, "".join("\\x%02x" % b for b in data)))


def main():
    write_corpus("c_api_fuzz", C_API)
    write_corpus("medium_free_lists_fuzz", MEDIUM)
    write_corpus("registry_fuzz", REGISTRY)
    write_corpus("size_classes_fuzz", SIZE_CLASSES)
    write_dict()


if __name__ == "__main__":
    main()
