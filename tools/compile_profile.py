"""Where the cold compile of the float32 kernels goes, function by function.

Usage: ``python tools/compile_profile.py [TOP]`` (default 25 rows). Runs the calls of
``tools/compile_time.py --all`` (``FIRST_CALL`` and ``OTHER_KERNELS`` of
``benchmarks/bench_compile.py``) in this process with a fresh, empty ``NUMBA_CACHE_DIR``,
and listens to Numba's ``numba:compile`` events: each compiled function's own time (its
nested compiles, of the helpers it calls, subtracted) and its time with them. The machine's
speed drifts by 10% from minute to minute, so compare two trees by alternating runs.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="fastconv-compile-profile-")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository's benchmarks

from benchmarks.bench_compile import FIRST_CALL, OTHER_KERNELS  # noqa: E402
from numba.core import event  # noqa: E402  (after NUMBA_CACHE_DIR is set)


class CompileTimes(event.Listener):
    """Seconds of each function's compiles, with and without the compiles they nest."""

    def __init__(self) -> None:
        self.open: list[list] = []  # [name, start, seconds of nested compiles]
        self.total: dict[str, float] = defaultdict(float)
        self.own: dict[str, float] = defaultdict(float)

    def on_start(self, ev: event.Event) -> None:
        """A compile of ``ev``'s dispatcher begins (inside any compile still open)."""
        dispatcher = ev.data.get("dispatcher")
        name = dispatcher.py_func.__module__ + "." + dispatcher.py_func.__qualname__ \
            if dispatcher is not None else "?"
        self.open.append([name, time.perf_counter(), 0.0])

    def on_end(self, ev: event.Event) -> None:
        """The innermost open compile ends: charge it, and its caller's nested time."""
        name, start, nested = self.open.pop()
        seconds = time.perf_counter() - start
        self.total[name] += seconds
        self.own[name] += seconds - nested
        if self.open:
            self.open[-1][2] += seconds


def main() -> None:
    """Compile everything once and print the functions taking longest."""
    top = int(sys.argv[1]) if len(sys.argv) > 1 else 25
    times = CompileTimes()
    event.register("numba:compile", times)
    start = time.perf_counter()
    exec("import numpy as np\nimport fastconv\n" + FIRST_CALL + OTHER_KERNELS, {})
    print(f"calls {time.perf_counter() - start:.1f} s (imports included); own / with nested:")
    for name, seconds in sorted(times.own.items(), key=lambda item: -item[1])[:top]:
        print(f"{seconds:6.2f} {times.total[name]:6.2f}  {name}")


if __name__ == "__main__":
    main()
