"""Interleaved A/B timing of two fastconv source trees in one process.

Usage: ``python tools/ab_passes.py BASE_SRC CASES PASSES [ROUNDS]``, e.g.
``python tools/ab_passes.py /tmp/base/src conv3x3_64,stem7x7s2 grad_weight 10`` (cases of
the benchmark list or of ``tools/extra_cases.py``; ``all``: the benchmark list).

``BASE_SRC`` is the ``src`` directory of another checkout (``git worktree add /tmp/base
<commit>``). Its package is copied once to ``/tmp/fastconv-ab/<name>`` under another name, so
both versions are imported side by side; each round times one call of A, then one of B, for
every case and pass, and the best of the rounds is kept. Alternating calls in one process
see the same machine phase, which separate processes on this noisy machine do not; the order
alternates from round to round. Prints one JSON object ``{"case:pass": [GFLOP/s of BASE,
GFLOP/s of this tree, ratio, median, q1, q3]}``: the best times' ratio, then the median and
quartiles of the rounds' own ratios (each round's two calls ran next to each other: a drift
of the machine's speed during the run moves both).

With ``--cold`` every call starts with its operands out of the caches (a 64 MiB buffer is
written first, outside the timing), as between the layers of a large network.
"""

import hashlib
import importlib
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from fastconv import bench

sys.path.insert(0, str(Path(__file__).parent))
from extra_cases import EXTRA, depthwise_case  # noqa: E402  (layers outside the list too)


def import_copy(src: str):
    """Import the ``fastconv`` package under ``src`` as a separately named package."""
    package = Path(src).resolve() / "fastconv"
    digest = hashlib.sha1(b"".join(p.read_bytes() for p in sorted(package.glob("*.py"))))
    name = f"fastconv_{digest.hexdigest()[:10]}"
    root = Path("/tmp/fastconv-ab")
    target = root / name
    if not target.exists():
        shutil.copytree(package, target, ignore=shutil.ignore_patterns("__pycache__"))
    sys.path.insert(0, str(root))
    return importlib.import_module(name)


def main() -> None:
    """Time the requested cases and passes with both trees, interleaved."""
    cold = "--cold" in sys.argv
    args = [a for a in sys.argv[1:] if a != "--cold"]
    base = import_copy(args[0])
    cases, passes = args[1].split(","), args[2].split(",")
    rounds = int(args[3]) if len(args) > 3 else 10
    flush = np.zeros(64 << 20 >> 3) if cold else None
    ours = bench.fastconv
    problems = {}
    specs = [depthwise_case(name) for name in cases if name.startswith("dw:")]
    for case in (*bench.CASES, *EXTRA, *specs):
        if (case.name not in cases) if cases != ["all"] else case not in bench.CASES:
            continue
        for pass_name in passes:
            pair = []
            for package in (base, ours):
                bench.fastconv = package
                pair.append(bench.make_problem(case, pass_name, np.float32))
            bench.fastconv = ours
            problems[f"{case.name}:{pass_name}"] = pair
    best = {key: [float("inf"), float("inf")] for key in problems}
    ratios = {key: [] for key in problems}
    for pair in problems.values():
        for problem in pair:
            problem.ours()
            problem.ours()
    for done in range(rounds):
        for key, pair in problems.items():
            # A then B in even rounds, B then A in odd ones: a call that follows the other
            # tree's ran up to 8% faster or slower, case by case (same trees, 30 rounds)
            took = [0.0, 0.0]
            for i in (0, 1) if done % 2 == 0 else (1, 0):
                if flush is not None:
                    flush += 1.0
                start = time.perf_counter()
                pair[i].ours()
                took[i] = time.perf_counter() - start
                best[key][i] = min(best[key][i], took[i])
            ratios[key].append(took[0] / took[1])
    result = {}
    for key, (a, b) in best.items():
        flops = problems[key][0].flops
        q1, median, q3 = np.percentile(ratios[key], (25, 50, 75))
        result[key] = [round(flops / a / 1e9, 1), round(flops / b / 1e9, 1), round(a / b, 3),
                       round(median, 3), round(q1, 3), round(q3, 3)]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
