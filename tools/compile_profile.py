"""Where the cold compile of the float32 kernels goes, function by function.

Usage: ``python tools/compile_profile.py [TOP] [--inline]`` (default 25 rows). Runs the calls of
``tools/compile_time.py --all`` (``FIRST_CALL`` and ``OTHER_KERNELS`` of
``benchmarks/bench_compile.py``) in this process with a fresh, empty ``NUMBA_CACHE_DIR``,
and listens to Numba's ``numba:compile`` events: each compiled function's own time (its
nested compiles, of the helpers it calls, subtracted) and its time with them. The machine's
speed drifts by 10% from minute to minute, so compare two trees by alternating runs.

With ``--inline`` it lists instead the helpers Numba splices into their callers
(:func:`fastconv._jit.inlined`): per helper, the splices, their own seconds (nested splices
subtracted), and the blocks and variables of the helper's IR. Each splice re-runs Numba's
untyped passes on the helper and deep-copies its IR twice, block by block, each block's
copy with the whole scope of variables: a cost of about blocks x variables (measured on
2026-11-28: 20-21 s of an 85 s cold compile; 6 s with Numba patched to copy the blocks in one
``deepcopy`` and to run the untyped passes once per helper).
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


class InlineTimes:
    """Seconds, splices and IR size of each helper Numba inlines (wraps its ``InlineWorker``)."""

    def __init__(self) -> None:
        from numba.core.inline_closurecall import InlineWorker

        self.nested: list[float] = []  # seconds of the splices inside each open splice
        self.splices: dict[str, int] = defaultdict(int)
        self.own: dict[str, float] = defaultdict(float)
        self.size: dict[str, tuple[int, int]] = {}
        inline_function, untyped = InlineWorker.inline_function, InlineWorker.run_untyped_passes

        def timed_inline(worker, caller_ir, block, i, function, arg_typs=None):
            start = time.perf_counter()
            self.nested.append(0.0)
            try:
                return inline_function(worker, caller_ir, block, i, function, arg_typs)
            finally:
                seconds = time.perf_counter() - start
                nested = self.nested.pop()
                if self.nested:
                    self.nested[-1] += seconds
                name = _name(function)
                self.splices[name] += 1
                self.own[name] += seconds - nested

        def sized_untyped(worker, function, enable_ssa=False):
            function_ir = untyped(worker, function, enable_ssa)
            scope = next(iter(function_ir.blocks.values())).scope
            self.size[_name(function)] = (len(function_ir.blocks), len(scope.localvars._con))
            return function_ir

        InlineWorker.inline_function = timed_inline
        InlineWorker.run_untyped_passes = sized_untyped

    def report(self, top: int) -> None:
        """Print the ``top`` helpers by own seconds, and the total."""
        print(f"inlining: {sum(self.own.values()):.1f} s in all; splices, own s, blocks, "
              "variables:")
        for name, seconds in sorted(self.own.items(), key=lambda item: -item[1])[:top]:
            blocks, variables = self.size.get(name, (0, 0))
            print(f"{self.splices[name]:5d} {seconds:6.2f} {blocks:5d} {variables:6d}  {name}")


def _name(function) -> str:
    """``module.qualname`` of a Python function."""
    return function.__module__ + "." + function.__qualname__


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
    """Compile everything once and print the functions (or inlined helpers) taking longest."""
    numbers = [arg for arg in sys.argv[1:] if arg.isdigit()]
    top = int(numbers[0]) if numbers else 25
    inlining = InlineTimes() if "--inline" in sys.argv[1:] else None
    times = CompileTimes()
    event.register("numba:compile", times)
    start = time.perf_counter()
    exec("import numpy as np\nimport fastconv\n" + FIRST_CALL + OTHER_KERNELS, {})
    print(f"calls {time.perf_counter() - start:.1f} s (imports included)")
    if inlining is not None:
        inlining.report(top)
        return
    print("own / with nested:")
    for name, seconds in sorted(times.own.items(), key=lambda item: -item[1])[:top]:
        print(f"{seconds:6.2f} {times.total[name]:6.2f}  {name}")


if __name__ == "__main__":
    main()
