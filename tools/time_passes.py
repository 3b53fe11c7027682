"""GFLOP/s of fastconv alone on benchmark cases, best of many calls (for A/B comparisons).

Usage: ``python tools/time_passes.py CASES PASSES [REPEATS]``, e.g.
``python tools/time_passes.py conv3x3_64,stem7x7s2 forward,grad_input 15`` (``all`` for every
case). Prints one JSON object ``{"case:pass": GFLOP/s}``.

The machine this project runs on swings by up to 2x between quiet and busy phases, so compare
two commits in alternating processes: ``git worktree add /tmp/base <commit>``, then run this
script several times with ``PYTHONPATH=/tmp/base/src`` and with ``PYTHONPATH=src`` in turn and
keep each version's best. PyTorch is not called (it only adds noise to such comparisons).
"""

import json
import sys
import time

import numpy as np

from fastconv import bench


def best_rate(call, flops: int, repeats: int) -> float:
    """GFLOP/s of the fastest of ``repeats`` calls (after two warm-up calls)."""
    call()
    call()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return flops / best / 1e9


def main() -> None:
    """Time the requested cases and passes and print the JSON line."""
    cases, passes = sys.argv[1].split(","), sys.argv[2].split(",")
    repeats = int(sys.argv[3]) if len(sys.argv) > 3 else 15
    rates = {}
    for case in bench.CASES:
        if cases != ["all"] and case.name not in cases:
            continue
        for pass_name in passes:
            problem = bench.make_problem(case, pass_name, np.float32)
            rates[f"{case.name}:{pass_name}"] = best_rate(problem.ours, problem.flops, repeats)
    print(json.dumps(rates))


if __name__ == "__main__":
    main()
