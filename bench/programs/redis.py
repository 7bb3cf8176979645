#!/usr/bin/env python3
"""redis: Debian's redis-server under the allocator, driven by redis-benchmark.

One server (unix socket only, no persistence) takes three rounds of
redis-benchmark, one per value size (16, 256 and 4096 bytes), each 50
clients pipelining 16 requests over a key space of 20000 x scale keys:
SET, GET, INCR, LPUSH, RPUSH, LPOP, SADD, HSET, ZADD, MSET. The data set is
kept between rounds, so values of one size are overwritten by another.
redis-benchmark draws its random keys itself (not from --seed).
Requests per round: 50000 x scale for 16 and 256 bytes, a sixteenth of
that for 4096 bytes (the same bytes, roughly, and a bounded data set).

Measured: seconds is the sum over every test of requests / requests per
second as redis-benchmark reports them (its own timing of each test, so
neither the server's start nor the client's is in it); ops the requests;
peak RSS and CPU time are redis-server's own. --threads is ignored: redis
executes every command, and so makes every allocation that matters, on
its main thread (I/O threads would only spin on a 2-core machine).

Checked (any miss fails the run): every test reported a rate; afterwards a
Lua script run by the server (redis-cli EVAL) walks the data: every string,
hash value and list element has one of the three sizes and equals the one
value redis-benchmark sent at that size; the INCR counters add up to the
INCR requests sent; the list holds exactly the RPUSHed elements of each
round in order (LPOP took the LPUSHed ones); the server then shuts down
cleanly (exit 0).

The allocator: Debian links redis-server against libjemalloc.so.2 ahead of
libc, with unprefixed malloc/free, so LD_PRELOAD of any allocator wins for
malloc, free, calloc, realloc and malloc_usable_size, and with nothing
preloaded jemalloc, not glibc, would serve redis. _driver.allocator_preload
checks the bindings and, for glibc, preloads libc.so.6 itself. mallctl,
nallocx and malloc_stats_print still bind to jemalloc (statistics and one
size-class hint in sdsResize; they never allocate or free redis's blocks),
so jemalloc's background thread, which redis would switch on through
mallctl in every run, is turned off (--jemalloc-bg-thread no): jemalloc
then runs with the defaults it has in every other workload.
"""

import csv
import io
import subprocess
import sys
import time
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ beside the drivers
import _driver  # noqa: E402

VALUE_SIZES = (16, 256, 4096)
TESTS = ("SET", "GET", "INCR", "LPUSH", "RPUSH", "LPOP", "SADD", "HSET", "ZADD", "MSET")
BASE_REQUESTS = 50000
BASE_KEYSPACE = 20000
CLIENTS = 50
PIPELINE = 16
READY_TIMEOUT_SECONDS = 20.0
ROUND_TIMEOUT_SECONDS = 300.0

# Walks the data set inside the server. ARGV: the value sizes, then the
# list's expected length per round. Returns {string values, sum of the
# counters, hash values, list length, bad values, first bad one}.
CHECK_SCRIPT = """
local sizes, rounds = {}, {}
local half = #ARGV / 2
for i = 1, half do sizes[tonumber(ARGV[i])] = false; rounds[i] = tonumber(ARGV[half + i]) end
local bad, first_bad = 0, ''
local function check(value, where, wanted_size)
  local size = #value
  local seen = sizes[size]
  local ok = (wanted_size == nil or size == wanted_size) and seen ~= nil
  if ok and seen == false then sizes[size] = value elseif ok then ok = (seen == value) end
  if not ok then
    bad = bad + 1
    if first_bad == '' then first_bad = where .. ' (' .. size .. ' bytes)' end
  end
end
local strings, counters = 0, 0
for _, key in ipairs(redis.call('KEYS', 'key:*')) do
  check(redis.call('GET', key), key); strings = strings + 1
end
for _, key in ipairs(redis.call('KEYS', 'counter:*')) do
  counters = counters + tonumber(redis.call('GET', key))
end
local fields = redis.call('HGETALL', 'myhash')
for i = 2, #fields, 2 do check(fields[i], 'myhash ' .. fields[i - 1]) end
local length = redis.call('LLEN', 'mylist')
local index = 0
for round = 1, half do
  local stop = index + rounds[round]
  while index < stop do
    local last = math.min(index + 999, stop - 1)
    for _, value in ipairs(redis.call('LRANGE', 'mylist', index, last)) do
      check(value, 'mylist[' .. index .. ']', tonumber(ARGV[round])); index = index + 1
    end
    if index <= last then break end
  end
end
return {strings, tostring(counters), #fields / 2, length, bad, first_bad}
"""


def redis_cli(socket: Path, *arguments: str, timeout: float = 120.0) -> str:
    done = subprocess.run(["redis-cli", "-s", str(socket), *arguments], capture_output=True,
                          text=True, timeout=timeout, env=_driver.helper_environment(),
                          stdin=subprocess.DEVNULL)
    return done.stdout


def wait_until_ready(server: _driver.Measured, socket: Path, log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        server_gone(server, log)
        if socket.exists() and redis_cli(socket, "PING", timeout=5).strip() == "PONG":
            return
        time.sleep(0.02)
    _driver.fail(f"redis-server not answering PING after {READY_TIMEOUT_SECONDS:g} s")


def server_gone(server: _driver.Measured, log: Path, grace: float = 0.0) -> None:
    """Fails the run with the reason when the server has ended early (or
    ends within `grace` seconds: a crashing redis first writes its report)."""
    deadline = time.monotonic() + grace
    while server.running() and time.monotonic() < deadline:
        time.sleep(0.05)
    if not server.running():
        _driver.require_success(server.wait(), "redis-server", log)
        _driver.fail("redis-server exited before its shutdown")


def run_round(server: _driver.Measured, log: Path, socket: Path, size: int, requests: int,
              keyspace: int) -> tuple[float, int]:
    """One redis-benchmark run; (seconds, requests) over its tests."""
    command = ["redis-benchmark", "-s", str(socket), "-c", str(CLIENTS), "-P", str(PIPELINE),
               "-n", str(requests), "-r", str(keyspace), "-d", str(size),
               "-t", ",".join(TESTS).lower(), "--csv"]
    done = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          timeout=ROUND_TIMEOUT_SECONDS, env=_driver.helper_environment())
    if done.returncode != 0:
        server_gone(server, log, grace=10.0)
        _driver.fail(f"redis-benchmark -d {size}: exit {done.returncode}: "
                     f"{done.stderr.strip()[-300:]}")
    rates = {}
    for row in csv.DictReader(io.StringIO(done.stdout)):
        try:
            rates[row["test"].split()[0]] = float(row["rps"])
        except (KeyError, ValueError, AttributeError, IndexError):
            _driver.fail(f"redis-benchmark -d {size}: unreadable line {row}")
    seconds = 0.0
    for test in TESTS:
        if not rates.get(test, 0) > 0:
            _driver.fail_wrong(f"redis-benchmark -d {size}: no rate for {test}:\n{done.stdout}")
        seconds += requests / rates[test]
    return seconds, requests * len(TESTS)


def check_data(server: _driver.Measured, log: Path, socket: Path,
               per_round: list[int]) -> dict[str, str]:
    """The data set against what the rounds sent; returns figures for the
    result line."""
    reply = redis_cli(socket, "EVAL", CHECK_SCRIPT, "0", *map(str, VALUE_SIZES),
                      *map(str, per_round)).splitlines()
    if len(reply) < 5:
        server_gone(server, log, grace=10.0)
        _driver.fail_wrong(f"data check: unexpected reply {reply!r}")
    strings, counters, fields, length, bad = (int(v) for v in reply[:5])
    if bad:
        _driver.fail_wrong(f"{bad} values differ from what redis-benchmark sent; first: "
                           f"{reply[5] if len(reply) > 5 else '?'}")
    _driver.expect("sum of the INCR counters", counters, sum(per_round))
    _driver.expect("length of mylist (RPUSHed elements)", length, sum(per_round))
    if strings == 0 or fields == 0:
        _driver.fail_wrong(f"data check: {strings} string keys, {fields} hash fields")
    return {"string_keys": str(strings), "hash_fields": str(fields)}


def main() -> None:
    options = _driver.parse_options(__doc__.split("\n\n")[0])
    server_path = _driver.require_program("redis-server")
    for helper in ("redis-benchmark", "redis-cli"):
        _driver.require_program(helper)
    env = _driver.helper_environment()
    preload = _driver.allocator_preload(options, [server_path, "--version"], env)
    keyspace = _driver.scaled(BASE_KEYSPACE, options.scale)
    # redis-benchmark sends whole pipelines: a multiple of PIPELINE requests.
    per_round = [-(-_driver.scaled(BASE_REQUESTS * min(1, 256 / size), options.scale)
                   // PIPELINE) * PIPELINE for size in VALUE_SIZES]

    with _driver.work_directory("redis") as scratch_name:
        scratch = Path(scratch_name)
        # The server's log (stdout) and anything on its stderr (an allocator's
        # report, a crash report) go to one file, shown when it fails.
        socket, log = scratch / "redis.sock", scratch / "redis.out"
        command = [server_path, "--port", "0", "--unixsocket", str(socket),
                   "--unixsocketperm", "700", "--save", "", "--appendonly", "no",
                   "--dir", str(scratch), "--daemonize", "no", "--jemalloc-bg-thread", "no"]
        with open(log, "wb") as out, \
                _driver.Measured(options, preload, command, env, scratch, "redis-server",
                                 stdin=subprocess.DEVNULL, stdout=out, stderr=out) as server:
            wait_until_ready(server, socket, log)
            seconds, ops = 0.0, 0
            for size, requests in zip(VALUE_SIZES, per_round):
                round_seconds, round_ops = run_round(server, log, socket, size, requests,
                                                     keyspace)
                seconds += round_seconds
                ops += round_ops
                server_gone(server, log)
            figures = check_data(server, log, socket, per_round)
            redis_cli(socket, "SHUTDOWN", "NOSAVE", timeout=30)
            usage = server.wait()
        _driver.require_success(usage, "redis-server", log)
    _driver.print_result("redis", options, seconds, ops, [usage], figures)


if __name__ == "__main__":
    main()
