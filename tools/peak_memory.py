"""Peak memory of every case and pass against the issue's budget (float32).

Usage: ``python tools/peak_memory.py [--extra]``. For each case of ``fastconv bench`` (with
``--extra``, of ``tools/extra_cases.py`` instead) and each pass,
prints ``(operands read + peak NumPy memory allocated during the call) / (operands read +
results)``; the target is at most 1.25. Measured with :mod:`tracemalloc` (NumPy reports its
allocations to it) on the first call after :func:`fastconv.clear_plans`, so work arrays are
allocated, not reused. Scratch allocated inside compiled kernels (per-task tiles of a few
kilobytes) is not counted.
"""

import sys
import tracemalloc
from pathlib import Path

import numpy as np

import fastconv
from fastconv import bench

#: Operands each pass reads (a transposed case reads the same names).
READS = {"forward": ("x", "weight", "bias"), "grad_input": ("weight", "grad_output"),
         "grad_weight": ("x", "grad_output")}


def main():
    """Print one line per case and pass."""
    cases = bench.benchmark_cases()
    if "--extra" in sys.argv[1:]:
        sys.path.insert(0, str(Path(__file__).parent))
        from extra_cases import EXTRA

        cases = {case.name: case for case in EXTRA}
    tracemalloc.start()
    for name, case in cases.items():
        for pass_name in bench.PASSES:
            problem = bench.make_problem(case, pass_name, np.float32)
            operands = sum(problem.arrays[k].nbytes for k in READS[pass_name]
                           if problem.arrays.get(k) is not None)
            result = problem.ours()
            results = sum(a.nbytes for a in (result if isinstance(result, tuple) else (result,))
                          if hasattr(a, "nbytes"))
            del result
            fastconv.clear_plans()
            base = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            again = problem.ours()
            peak = tracemalloc.get_traced_memory()[1] - base
            del again
            ratio = (operands + peak) / (operands + results)
            print(f"{name:20s} {pass_name:12s} {ratio:6.3f}  (peak {peak / 1e6:.1f} MB, results "
                  f"{results / 1e6:.1f} MB, operands {operands / 1e6:.1f} MB)", flush=True)


if __name__ == "__main__":
    main()
