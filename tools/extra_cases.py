"""Layers outside the benchmark list, timed against PyTorch in the same process.

Usage: ``python tools/extra_cases.py [NAME,...] [PASSES] [ROUNDS]``. Prints, per case and
pass, fastconv's and PyTorch's best milliseconds, the speedup and fastconv's algorithm.
The cases are the downsampling blocks of MobileNet / ResNeXt style networks (depthwise and
grouped layers strided along every dimension) and depthwise variants (dilated, 5x5).
"""

import sys

import numpy as np

from fastconv import bench
from fastconv.bench import Case

EXTRA = (
    Case("dw3x3s2_256", "depthwise 3x3 s2 256 at 56x56", 8, 256, 256, (56, 56), (3, 3),
         stride=2, padding=1, groups=256),
    Case("dw3x3s2_32", "depthwise 3x3 s2 32 at 112x112", 8, 32, 32, (112, 112), (3, 3),
         stride=2, padding=1, groups=32),
    Case("dw5x5s2_240", "depthwise 5x5 s2 240 at 28x28", 8, 240, 240, (28, 28), (5, 5),
         stride=2, padding=2, groups=240),
    Case("g32s2_256", "grouped 3x3 (32 groups) s2 256 at 56x56", 8, 256, 256, (56, 56),
         (3, 3), stride=2, padding=1, groups=32),
    Case("dw3x3d2_256", "depthwise 3x3 dilation 2 256 at 56x56", 8, 256, 256, (56, 56),
         (3, 3), padding=2, dilation=2, groups=256),
    Case("dw5x5_240", "depthwise 5x5 240 at 28x28", 8, 240, 240, (28, 28), (5, 5),
         padding=2, groups=240),
    Case("image5x5s2", "single-channel 1024x1024 image, 5x5 stride 2", 1, 1, 1,
         (1024, 1024), (5, 5), stride=2, padding=2),
)


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
