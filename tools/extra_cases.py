"""Layers outside the benchmark list, timed against PyTorch in the same process.

Usage: ``python tools/extra_cases.py [NAME,...] [PASSES] [ROUNDS]``. Prints, per case and
pass, fastconv's and PyTorch's best milliseconds and the speedup. The cases are
:data:`fastconv.bench.EXTRA_CASES`: the downsampling blocks of MobileNet / ResNeXt style
networks (depthwise and grouped layers strided along every dimension) and depthwise variants
(dilated, 5x5).
"""

import sys

import numpy as np

from fastconv import bench

#: The layers (:data:`fastconv.bench.EXTRA_CASES`).
EXTRA = bench.EXTRA_CASES


def main() -> None:
    """Time the requested cases and passes."""
    names = sys.argv[1].split(",") if len(sys.argv) > 1 and sys.argv[1] != "all" else None
    passes = sys.argv[2].split(",") if len(sys.argv) > 2 else list(bench.PASSES)
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    for case in EXTRA:
        if names and case.name not in names:
            continue
        for pass_name in passes:
            problem = bench.make_problem(case, pass_name, np.float32, peers=("torch",))
            calls = {"fastconv": problem.ours, "torch": problem.peers["torch"]}
            best, _ = bench.interleaved_best(calls, rounds=rounds)
            ours, theirs = best["fastconv"] * 1e3, best["torch"] * 1e3
            print(f"{case.name:12s} {pass_name:11s} fastconv {ours:8.3f} ms  torch "
                  f"{theirs:8.3f} ms  {theirs / ours:6.2f}x", flush=True)


if __name__ == "__main__":
    main()
