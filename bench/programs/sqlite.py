#!/usr/bin/env python3
"""sqlite: the sqlite3 shell under the allocator, building and querying a
generated database in memory.

One sqlite3 -batch -bail process on an in-memory database (no disk: every
page is a malloc'd block, and Debian builds SQLite without its lookaside
allocator, so every small object is a malloc call too) runs a script the
driver writes beforehand:
  - 20000 x scale customers, one INSERT statement each (parsed one by one);
  - 250000 x scale orders from a recursive CTE, with notes of varying length;
  - three indexes (the sorter; with --threads=N, PRAGMA threads lets it use
    N - 1 helper threads, which free what another thread allocated);
  - a join with GROUP BY, a range count through an index, a top-5 by total,
    string aggregates over the customers, COUNT(DISTINCT) over the notes,
    a window function, an UPDATE that grows every fifth note and a DELETE,
    then aggregates again and PRAGMA integrity_check.
Measured: the sqlite3 process from start to exit (its start-up is a
millisecond); ops are the rows inserted; peak RSS and CPU time are
sqlite3's own.
Checked: sqlite3's whole output equals the answer the driver computes
itself from the rows' defining formulas (which --seed varies).
"""

import subprocess
import sys
from collections import defaultdict
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ beside the drivers
import _driver  # noqa: E402

BASE_CUSTOMERS = 20000
BASE_ORDERS = 250000
MULTIPLIERS = (7919, 104729, 15485863, 179424673, 2038074743)
LETTERS = "abcdefghijklmnopqrstuvwxyz"
MAX_WORKER_THREADS = 8  # Debian's SQLITE_MAX_WORKER_THREADS caps PRAGMA threads


class Data:
    """The rows' defining formulas, shared by the SQL and the answer."""

    def __init__(self, customers: int, orders: int, seed: int):
        self.customers, self.orders = customers, orders
        self.multiplier = MULTIPLIERS[seed % len(MULTIPLIERS)]
        self.step = 37 + 2 * (seed % 50)

    def name(self, c: int) -> str:
        return f"customer-{c}-" + "x" * (c % 13)

    @staticmethod
    def region(c: int) -> int:
        return c * 7 % 10

    def customer_of(self, i: int) -> int:
        return i * self.multiplier % self.customers + 1

    def amount(self, i: int) -> int:
        return i * self.step % 1000 + 1

    def note(self, i: int) -> str:
        return f"order {i} for {self.customer_of(i)} " + LETTERS[:i % 27]


def script(data: Data, threads: int) -> str:
    lines = [f"PRAGMA threads = {threads - 1};", "PRAGMA temp_store = MEMORY;",
             "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, "
             "region INTEGER NOT NULL, tier TEXT NOT NULL);", "BEGIN;"]
    tiers = ("gold", "silver", "bronze")
    lines += [f"INSERT INTO customers VALUES ({c}, '{data.name(c)}', {data.region(c)}, "
              f"'{tiers[c % 3]}');" for c in range(1, data.customers + 1)]
    m, s, n, c = data.multiplier, data.step, data.orders, data.customers
    lines += ["COMMIT;", f"""
CREATE TABLE orders (id INTEGER PRIMARY KEY, customer INTEGER NOT NULL,
                     amount INTEGER NOT NULL, note TEXT NOT NULL);
INSERT INTO orders
  WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < {n})
  SELECT i, i * {m} % {c} + 1, i * {s} % 1000 + 1,
         printf('order %d for %d ', i, i * {m} % {c} + 1) || substr('{LETTERS}', 1, i % 27)
  FROM seq;
CREATE INDEX orders_customer ON orders (customer);
CREATE INDEX orders_amount ON orders (amount, id);
CREATE INDEX customers_region ON customers (region, name);
SELECT 'region', c.region, count(*), sum(o.amount)
  FROM orders o JOIN customers c ON c.id = o.customer GROUP BY c.region ORDER BY c.region;
SELECT 'band', count(*), sum(id) FROM orders WHERE amount BETWEEN 100 AND 199;
SELECT 'top', customer, sum(amount) AS total FROM orders
  GROUP BY customer ORDER BY total DESC, customer LIMIT 5;
SELECT 'names', count(DISTINCT name), sum(length(name)), length(group_concat(name, ','))
  FROM customers;
SELECT 'notes', count(DISTINCT note) FROM orders;
UPDATE orders SET note = note || '|' || note WHERE id % 5 = 0;
DELETE FROM orders WHERE amount > 900;
SELECT 'after', count(*), sum(length(note)), sum(amount) FROM orders;
SELECT 'firsts', count(*) FROM (
  SELECT rank() OVER (PARTITION BY customer ORDER BY amount DESC, id) AS r FROM orders)
  WHERE r = 1;
PRAGMA integrity_check;"""]
    return "\n".join(lines) + "\n"


def expected_output(data: Data, threads: int) -> list[str]:
    """What sqlite3 must print, computed here without SQL."""
    out = [str(min(threads - 1, MAX_WORKER_THREADS))]
    region_count, region_sum = defaultdict(int), defaultdict(int)
    totals = defaultdict(int)
    band_count = band_ids = 0
    after_count = after_length = after_amount = 0
    kept_customers = set()
    for i in range(1, data.orders + 1):
        customer, amount = data.customer_of(i), data.amount(i)
        region = data.region(customer)
        region_count[region] += 1
        region_sum[region] += amount
        totals[customer] += amount
        if 100 <= amount <= 199:
            band_count += 1
            band_ids += i
        if amount <= 900:
            length = len(data.note(i))
            after_count += 1
            after_length += 2 * length + 1 if i % 5 == 0 else length
            after_amount += amount
            kept_customers.add(customer)
    out += [f"region|{r}|{region_count[r]}|{region_sum[r]}" for r in sorted(region_count)]
    out.append(f"band|{band_count}|{band_ids}")
    top = sorted(totals.items(), key=lambda item: (-item[1], item[0]))[:5]
    out += [f"top|{customer}|{total}" for customer, total in top]
    name_length = sum(len(data.name(c)) for c in range(1, data.customers + 1))
    out.append(f"names|{data.customers}|{name_length}|{name_length + data.customers - 1}")
    out.append(f"notes|{data.orders}")  # every note names its order
    out.append(f"after|{after_count}|{after_length}|{after_amount}")
    out.append(f"firsts|{len(kept_customers)}")
    out.append("ok")
    return out


def main() -> None:
    options = _driver.parse_options(__doc__.split("\n\n")[0])
    sqlite = _driver.require_program("sqlite3")
    env = _driver.helper_environment()
    preload = _driver.allocator_preload(options, [sqlite, "-version"], env)
    data = Data(_driver.scaled(BASE_CUSTOMERS, options.scale),
                _driver.scaled(BASE_ORDERS, options.scale), options.seed)

    with _driver.work_directory("sqlite") as scratch_name:
        scratch = Path(scratch_name)
        (scratch / "work.sql").write_text(script(data, options.threads))
        with open(scratch / "work.sql", "rb") as sql, open(scratch / "out", "wb") as out, \
                open(scratch / "err", "wb") as err:
            with _driver.Stopwatch() as watch, \
                    _driver.Measured(options, preload, [sqlite, "-batch", "-bail", ":memory:"],
                                     env, scratch, "sqlite3", stdin=sql, stdout=out,
                                     stderr=err) as program:
                usage = program.wait(timeout=600)
        _driver.require_success(usage, "sqlite3", scratch / "err")
        got = (scratch / "out").read_text(errors="replace").splitlines()
    wanted = expected_output(data, options.threads)
    for number, (line, expected) in enumerate(zip(got, wanted), 1):
        _driver.expect(f"sqlite3 output line {number}", line, expected)
    _driver.expect("sqlite3 output lines", len(got), len(wanted))
    _driver.print_result("sqlite", options, watch.seconds, data.customers + data.orders,
                         [usage])


if __name__ == "__main__":
    main()
