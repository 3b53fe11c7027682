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


def depthwise_case(spec: str) -> bench.Case:
    """A depthwise layer named ``dw:K:C:H:W:S`` (kernel, channels, plane, stride), batch 8.

    For trying shapes outside the lists, e.g. ``dw:5:96:56:56:1``; ``same`` padding.
    """
    k, c, h, w, s = (int(v) for v in spec.split(":")[1:])
    return bench.Case(name=spec, description=f"depthwise {k}x{k} stride {s}, {c} ch at {h}x{w}",
                      batch=8, in_channels=c, out_channels=c, spatial=(h, w), kernel=(k, k),
                      stride=s, padding=k // 2, dilation=1, groups=c, transposed=False,
                      output_padding=0)


def cases_named(names: list[str] | None) -> list[bench.Case]:
    """The extra layers named (all for ``None``); ``dw:...`` names by :func:`depthwise_case`."""
    if names is None:
        return list(EXTRA)
    by_name = {case.name: case for case in EXTRA}
    return [depthwise_case(n) if n.startswith("dw:") else by_name[n] for n in names
            if n.startswith("dw:") or n in by_name]


def main() -> None:
    """Time the requested cases and passes."""
    names = sys.argv[1].split(",") if len(sys.argv) > 1 and sys.argv[1] != "all" else None
    passes = sys.argv[2].split(",") if len(sys.argv) > 2 else list(bench.PASSES)
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    for case in cases_named(names):
        for pass_name in passes:
            problem = bench.make_problem(case, pass_name, np.float32, peers=("torch",))
            calls = {"fastconv": problem.ours, "torch": problem.peers["torch"]}
            best, _ = bench.interleaved_best(calls, rounds=rounds)
            ours, theirs = best["fastconv"] * 1e3, best["torch"] * 1e3
            print(f"{case.name:12s} {pass_name:11s} fastconv {ours:8.3f} ms  torch "
                  f"{theirs:8.3f} ms  {theirs / ours:6.2f}x", flush=True)


if __name__ == "__main__":
    main()
