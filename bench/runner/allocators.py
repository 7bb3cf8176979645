"""The allocators a benchmark compares, and the environment each run gets.

glibc is the system malloc (nothing preloaded); every other allocator is a
shared library put in front of it with LD_PRELOAD. hpcalloc is the one being
judged; the others are its *peers*, and every ratio in a report is taken
against the best peer. Runs never inherit the caller's LD_PRELOAD or any
HPCALLOC_* variable, so a stray setting in the shell cannot change what is
measured (other allocators' own variables, such as MALLOC_CONF, pass through).
"""

import os
from dataclasses import dataclass
from pathlib import Path

SYSTEM_LIBRARY_DIR = Path("/usr/lib/x86_64-linux-gnu")

# name -> library file (None: glibc, no preload). hpcalloc's comes from the
# build tree; the peers are the Debian 12 packages scripts/deps.sh installs.
PEER_LIBRARIES = {
    "glibc": None,
    "jemalloc": SYSTEM_LIBRARY_DIR / "libjemalloc.so.2",
    "tcmalloc": SYSTEM_LIBRARY_DIR / "libtcmalloc_minimal.so.4",
    "mimalloc": SYSTEM_LIBRARY_DIR / "libmimalloc.so.2",
}
HPCALLOC = "hpcalloc"
ALL_NAMES = list(PEER_LIBRARIES) + [HPCALLOC]


@dataclass(frozen=True)
class Allocator:
    name: str
    library: Path | None  # None: glibc's malloc, nothing preloaded
    peer: bool = True     # a peer sets the bar; hpcalloc and NAME=PATH builds are measured
    settings: tuple[tuple[str, str], ...] = ()  # NAME=PATH@VAR=VALUE: set for this one only

    @property
    def is_peer(self) -> bool:
        return self.peer

    def environment(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """The environment of a run: `base` (default os.environ) without
        LD_PRELOAD and HPCALLOC_*, plus this allocator's LD_PRELOAD."""
        source = os.environ if base is None else base
        env = {
            key: value
            for key, value in source.items()
            if key != "LD_PRELOAD" and not key.startswith("HPCALLOC_")
        }
        if self.library is not None:
            env["LD_PRELOAD"] = str(self.library)
        env.update(self.settings)
        return env


class AllocatorError(Exception):
    """An allocator that was asked for but cannot be run."""


def resolve(names: list[str], build_dir: Path) -> list[Allocator]:
    """The allocators called `names`, in that order, each library checked to
    exist. Raises AllocatorError naming every unknown name or missing file."""
    problems = []
    allocators = []
    for name in names:
        peer = name in PEER_LIBRARIES
        settings = ()
        if "=" in name:
            # NAME=PATH: another build of hpcalloc (say, before a change),
            # measured against the peers like hpcalloc itself. PATH may
            # end in @VAR=VALUE settings for this allocator's runs only
            # (hpcalloc-thp=build/release/src/libhpcalloc.so@HPCALLOC_THP=always).
            name, path = name.split("=", 1)
            path, *pairs = path.split("@")
            bad = [pair for pair in pairs if "=" not in pair]
            if bad:
                problems.append(f"{name}: settings must be VAR=VALUE, not {', '.join(bad)}")
                continue
            settings = tuple(tuple(pair.split("=", 1)) for pair in pairs)
            library = Path(path)
            hint = "a library to preload"
        elif name == HPCALLOC:
            library = build_dir / "src" / "libhpcalloc.so"
            hint = "build it: cmake --build --preset release"
        elif name in PEER_LIBRARIES:
            library = PEER_LIBRARIES[name]
            hint = "install it: scripts/deps.sh"
        else:
            problems.append(f"unknown allocator '{name}' (known: {', '.join(ALL_NAMES)})")
            continue
        if library is not None and not library.is_file():
            problems.append(f"{name}: {library} not found ({hint})")
            continue
        allocators.append(Allocator(name, library, peer, settings))
    if problems:
        raise AllocatorError("\n".join(problems))
    return allocators
