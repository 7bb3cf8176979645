#!/usr/bin/env python3
"""The mutation campaign: does every test layer catch what it claims to?

Each planted bug is a patch in scripts/mutations/ whose header names what it
breaks and the test layer (a preset and a ctest label) that must catch it:

    # Planted: the free fast path skips the double-free key check
    # Area: misuse
    # Escape: yes            (one of the escapes issue 17 lists)
    # Expect: release:unit   (one or more PRESET:LABEL, each must catch it)
    # Tests: double_free     (optional ctest -R hint, tried first)
    diff --git a/src/... b/src/...

For each patch, in a private copy of the working tree (build/mutate/tree,
kept between runs so builds are incremental): apply it, rebuild each named
preset, run the named label (the hinted tests first, then the whole label,
stopping at the first failure), record the first failing test, revert.
A patch that does not apply or does not compile is an error, not a catch.

At the end, every test that caught something runs again on the unmutated
tree: a test that fails there too (flaky, or broken on this machine) proves
nothing, and its catches are not counted.

Prints a table (also written to build/mutate/report.md) and exits 1 when a
planted bug survives any of its layers, a patch is broken, or a control
fails.

    scripts/mutate.sh                  # every planted bug
    scripts/mutate.sh --only 'fork|numa'
    scripts/mutate.sh --list
"""

import argparse
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MUTATIONS = ROOT / "scripts" / "mutations"
WORK = ROOT / "build" / "mutate"
TREE = WORK / "tree"


class Mutation:
    def __init__(self, path: Path):
        self.path = path
        self.name = path.stem
        self.planted = ""
        self.area = ""
        self.escape = False
        self.expect = []  # [(preset, label)]
        self.tests = ""
        for line in path.read_text().splitlines():
            if line.startswith("diff "):
                break
            match = re.match(r"#\s*(\w+):\s*(.*)", line)
            if not match:
                continue
            key, value = match.group(1).lower(), match.group(2).strip()
            if key == "planted":
                self.planted = value
            elif key == "area":
                self.area = value
            elif key == "escape":
                self.escape = value.lower().startswith("yes")
            elif key == "expect":
                for item in value.split():
                    preset, _, label = item.partition(":")
                    self.expect.append((preset, label))
            elif key == "tests":
                self.tests = value
        if not self.planted or not self.expect:
            sys.exit(f"{path}: needs '# Planted:' and '# Expect: PRESET:LABEL' lines")


def run(command, cwd, log, timeout=None):
    """Runs command, appending its output to log; returns (rc, output)."""
    start = time.time()
    try:
        result = subprocess.run(command, cwd=cwd, capture_output=True, text=True,
                                timeout=timeout)
        output = result.stdout + result.stderr
        rc = result.returncode
    except subprocess.TimeoutExpired as expired:
        output = (expired.stdout or b"").decode(errors="replace") if isinstance(
            expired.stdout, bytes) else (expired.stdout or "")
        rc = 124
    with open(log, "a") as f:
        f.write(f"$ {' '.join(command)}  (in {cwd}, {time.time() - start:.0f} s, rc {rc})\n")
        f.write(output)
    return rc, output


def sync_tree(log):
    """Copies the working tree (tracked and untracked, not ignored) into TREE,
    touching only files that differ (so builds stay incremental), and commits
    it there, so that each patch can be reverted with git."""
    TREE.mkdir(parents=True, exist_ok=True)
    listing = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                             capture_output=True, check=True).stdout.decode()
    wanted = {name for name in listing.split("\0") if name and (ROOT / name).is_file()}
    for name in wanted:
        source, target = ROOT / name, TREE / name
        if not target.exists() or source.read_bytes() != target.read_bytes():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    for target in TREE.rglob("*"):
        relative = target.relative_to(TREE).as_posix()
        if relative.split("/")[0] in ("build", ".git") or not target.is_file():
            continue
        if relative not in wanted and relative != ".gitignore":
            target.unlink()
    if not (TREE / ".git").exists():
        run(["git", "init", "-q"], TREE, log)
        run(["git", "config", "user.email", "mutate@localhost"], TREE, log)
        run(["git", "config", "user.name", "mutate"], TREE, log)
    (TREE / ".gitignore").write_text("/build/\n")
    run(["git", "add", "-A"], TREE, log)
    run(["git", "commit", "-qm", "baseline", "--allow-empty"], TREE, log)


def revert(log):
    run(["git", "checkout", "--", "."], TREE, log)
    run(["git", "clean", "-fdq", "-e", "build"], TREE, log)


def build(preset, log, outputs=None):
    """Builds PRESET's tree, or only OUTPUTS (paths of files ninja makes,
    relative to the tree's build directory) and what they depend on."""
    if not (TREE / "build" / preset / "build.ninja").exists():
        rc, _ = run(["cmake", "--preset", preset], TREE, log)
        if rc != 0:
            return False
    extra = ["--", *outputs] if outputs else []
    rc, _ = run(["cmake", "--build", "--preset", preset, *extra], TREE, log)
    return rc == 0


def test_executables(preset, label, hint):
    """The executables the hinted tests of LABEL run, relative to the build
    directory, or None when one of them is not an executable built there
    (a script: it may need anything, so everything is built)."""
    directory = TREE / "build" / preset
    result = subprocess.run(["ctest", "--test-dir", str(directory), "-L", f"^{label}$", "-R",
                             hint, "--show-only=json-v1"], capture_output=True, text=True)
    if result.returncode != 0:
        return None
    outputs = set()
    for test in json.loads(result.stdout).get("tests", []):
        command = test.get("command") or []
        if not command:
            return None
        path = Path(command[0])
        try:
            outputs.add(path.relative_to(directory).as_posix())
        except ValueError:
            return None
    return sorted(outputs) or None


def failed_tests(output):
    return re.findall(r"^\s*\d+ - (\S+) \(", output, flags=re.M)


def catches(preset, label, hint, log, timeout):
    """The first failing test of LABEL in PRESET's tree, or None; "DOES NOT
    BUILD" when the mutated tree does not compile. The hinted tests go first,
    with only their executables rebuilt; then the whole label, everything
    rebuilt."""
    base = ["ctest", "--test-dir", str(TREE / "build" / preset), "-L", f"^{label}$",
            "--stop-on-failure", "--timeout", str(timeout), "-j", os.environ.get("JOBS", "2")]
    passes = []
    if hint:
        outputs = test_executables(preset, label, hint)
        if outputs:
            passes.append((outputs, base + ["-R", hint]))
    passes.append((None, base))
    for outputs, command in passes:
        if not build(preset, log, outputs):
            return "DOES NOT BUILD"
        rc, output = run(command, TREE, log)
        if "No tests were found" in output:
            continue
        if rc != 0:
            names = failed_tests(output)
            return names[0] if names else "(ctest failed)"
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", help="run the planted bugs whose file name matches this regex")
    parser.add_argument("--list", action="store_true", help="list the planted bugs and exit")
    parser.add_argument("--timeout", type=int, default=300, help="per test, seconds")
    parser.add_argument("--prepare", metavar="PRESET", nargs="*",
                        help="only copy the tree and build these presets (unmutated), then exit")
    args = parser.parse_args()

    mutations = [Mutation(p) for p in sorted(MUTATIONS.glob("*.patch"))]
    if args.only:
        mutations = [m for m in mutations if re.search(args.only, m.name)]
    if args.list:
        for m in mutations:
            expect = " ".join(f"{p}:{l}" for p, l in m.expect)
            print(f"{m.name:44} {m.area:10} {expect:24} {m.planted}")
        return 0
    if not mutations and args.prepare is None:
        sys.exit("no planted bugs match")

    WORK.mkdir(parents=True, exist_ok=True)
    # One campaign at a time: two ninjas in one build directory corrupt its
    # dependency log (an object then stops being rebuilt when a header it
    # includes is mutated, and the bug looks missed).
    lock = open(WORK / "lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        sys.exit(f"another mutation campaign is running in {WORK}")
    log = WORK / "mutate.log"
    log.write_text("")
    if args.prepare is not None:
        sync_tree(log)
        revert(log)
        for preset in args.prepare:
            print(f"building the unmutated {preset} tree ...", flush=True)
            if not build(preset, log):
                sys.exit(f"the unmutated {preset} tree does not build; see {log}")
        return 0
    print(f"mutation campaign: {len(mutations)} planted bugs; log {log}", flush=True)
    sync_tree(log)
    revert(log)
    presets = sorted({preset for m in mutations for preset, _ in m.expect})
    for preset in presets:
        print(f"building the unmutated {preset} tree ...", flush=True)
        if not build(preset, log):
            sys.exit(f"the unmutated {preset} tree does not build; see {log}")

    rows = []
    status = 0
    for m in mutations:
        start = time.time()
        results = []
        revert(log)
        rc, _ = run(["git", "apply", "--whitespace=nowarn", str(m.path)], TREE, log)
        if rc != 0:
            results.append(("-", "-", "PATCH DOES NOT APPLY"))
        else:
            for preset, label in m.expect:
                caught_by = catches(preset, label, m.tests, log, args.timeout)
                if caught_by is None:
                    verdict = "MISSED"
                elif caught_by == "DOES NOT BUILD":
                    verdict = caught_by
                else:
                    verdict = f"caught: {caught_by}"
                results.append((preset, label, verdict))
        revert(log)
        for preset, label, verdict in results:
            if not verdict.startswith("caught") or verdict.endswith("(ctest failed)"):
                status = 1
            rows.append((m, f"{preset}:{label}", verdict))
            print(f"{m.name:44} {preset + ':' + label:16} {verdict}  ({time.time() - start:.0f} s)",
                  flush=True)

    # Leave the tree's builds unmutated for the next run, and run every
    # catching test on it: a test that fails without the planted bug (flaky,
    # or broken on this machine) proves nothing, so its catches do not count.
    for preset in presets:
        build(preset, log)
    catchers = {}
    for index, (m, layer, verdict) in enumerate(rows):
        if verdict.startswith("caught: ") and not verdict.endswith("(ctest failed)"):
            preset = layer.split(":")[0]
            catchers.setdefault((preset, verdict[len("caught: "):]), []).append(index)
    print(f"control: {len(catchers)} catching tests on the unmutated tree ...", flush=True)
    for (preset, test), indexes in sorted(catchers.items()):
        rc, _ = run(["ctest", "--test-dir", str(TREE / "build" / preset), "-R",
                     f"^{re.escape(test)}$", "--timeout", str(args.timeout)], TREE, log)
        if rc != 0:
            status = 1
            print(f"control: {test} FAILS WITHOUT ANY PLANTED BUG", flush=True)
            for index in indexes:
                m, layer, verdict = rows[index]
                rows[index] = (m, layer, f"{verdict} (NOT COUNTED: fails unmutated too)")

    caught = sum(1 for _, _, v in rows if v.startswith("caught") and "NOT COUNTED" not in v)
    lines = ["| planted bug | area | escape | layer | result |", "|---|---|---|---|---|"]
    for m, layer, verdict in rows:
        lines.append(f"| `{m.name}`: {m.planted} | {m.area} | {'yes' if m.escape else ''} | "
                     f"{layer} | {verdict} |")
    lines.append("")
    lines.append(f"{caught} of {len(rows)} caught")
    (WORK / "report.md").write_text("\n".join(lines) + "\n")
    print()
    print("\n".join(lines))
    return status


if __name__ == "__main__":
    sys.exit(main())
