#!/usr/bin/env bash
# gcc under the preload (the driver, cc1, as, collect2 and ld all inherit
# it): compiles a generated C file of ~4000 lines at -O2 -g and links it.
# Checked: the object file is byte-identical to the one gcc makes without
# the preload (the compiler is deterministic, so any difference means the
# allocator changed what it computed), and the program prints the checksum
# that Python computes from the same definitions.
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
preload_setup gcc
command -v gcc >/dev/null || fail "gcc is not installed"

# Writes gen.c (functions f0..f399 of mixed shapes, a table of them, a main
# that prints the sum of f_k(k)) and prints the sum it expects.
cat >"$tmp/generate.py" <<'PYEOF'
import sys
M = 0xFFFFFFFF
count = 400
out = ["#include <stdint.h>", "#include <stdio.h>", ""]
total = 0
for k in range(count):
    a, b, s = 2654435761 ^ (k * 40503), k * 7919 + 1, 1 + k % 13
    rounds, table = 4 + k % 9, [(k * 31 + i * 17) % 251 for i in range(8)]
    out += ["static const uint32_t table%d[8] = {%s};" % (k, ", ".join(map(str, table))),
            "__attribute__((noinline)) static uint32_t f%d(uint32_t x) {" % k,
            "  for (int i = 0; i < %d; i++) {" % rounds,
            "    x = x * %du + %du;" % (a & M, b),
            "    x ^= x >> %d;" % s,
            "    switch (x & 3u) {",
            "      case 0: x += table%d[i & 7]; break;" % k,
            "      case 1: x ^= table%d[(i + 3) & 7] << 5; break;" % k,
            "      case 2: x = (x << 3) | (x >> 29); break;",
            "      default: x -= %du; break;" % (k + 1),
            "    }",
            "  }",
            "  return x;",
            "}", ""]
    x = k
    for i in range(rounds):
        x = (x * (a & M) + b) & M
        x ^= x >> s
        c = x & 3
        if c == 0: x = (x + table[i & 7]) & M
        elif c == 1: x ^= (table[(i + 3) & 7] << 5) & M
        elif c == 2: x = ((x << 3) | (x >> 29)) & M
        else: x = (x - (k + 1)) & M
    total += x
out.append("static uint32_t (*const functions[%d])(uint32_t) = {%s};"
           % (count, ", ".join("f%d" % k for k in range(count))))
out += ["int main(void) {", "  uint64_t sum = 0;",
        "  for (uint32_t k = 0; k < %d; k++) sum += functions[k](k);" % count,
        '  printf("%llu\\n", (unsigned long long)sum);', "  return 0;", "}"]
with open(sys.argv[1], "w") as f:
    f.write("\n".join(out) + "\n")
print(total)
PYEOF
expected=$(/usr/bin/python3 "$tmp/generate.py" "$tmp/gen.c")
lines=$(wc -l <"$tmp/gen.c")
[[ $lines -gt 3000 ]] || fail "the generated file has only $lines lines"

cd "$tmp"
preloaded gcc -O2 -g -c gen.c -o preloaded.o
plain gcc -O2 -g -c gen.c -o plain.o
expect_same_file "object files compiled with and without the preload" plain.o preloaded.o
preloaded gcc -O2 preloaded.o -o preloaded.bin
expect_equal "checksum printed by the program compiled under the preload" "$expected" "$(./preloaded.bin)"
preload_done
