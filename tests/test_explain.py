"""``fastconv.explain`` reports the algorithms the convolution functions actually run."""

import numpy as np
import pytest

import fastconv
from fastconv import convolution

CASES = [
    # (x_shape, weight_shape, options)
    ((2, 64, 9, 11), (64, 64, 3, 3), {"padding": 1}),
    ((2, 8, 9, 37), (8, 1, 3, 3), {"padding": 1, "groups": 8}),
    ((1, 1, 40, 70), (1, 1, 5, 5), {"padding": 2, "padding_mode": "reflect"}),
    ((2, 16, 12, 12), (32, 16, 3, 3), {"stride": 2, "padding": 1}),
    ((2, 3, 23, 19), (16, 3, 7, 7), {"stride": 2, "padding": 3}),
    ((2, 9, 11, 8), (8, 1, 3, 3), {"padding": 1, "groups": 8, "channels_last": True}),
    ((2, 6, 20), (6, 2, 3), {"padding": 1, "groups": 3, "padding_mode": "circular"}),
    ((2, 64, 20, 20), (48, 64, 1, 1), {}),
]


def _run_names(plan):
    """Algorithm names of the passes of a cached gradient or forward plan."""
    def name(run):
        kind = type(run).__name__
        if kind == "_PhasePass":  # the algorithm of the phase with the most taps
            largest = max((p for p in run.phases if p[3] is not None),
                          key=lambda p: np.prod([len(d.taps) for d in p[0]]))
            return "phases/" + name(largest[3])
        if kind in ("_PassOnPlanes", "_WeightPassOnPlanes"):  # on copies as planes
            return name(run.run)
        return {"_DensePass": "dense", "_WinogradPass": "winograd", "_PlanarPass": "planar",
                "_GatherPass": "gather", "_DepthwisePass": "depthwise",
                "_DepthwiseWeightPass": "depthwise", "_PointwisePass": "pointwise",
                "_DenseWeightPass": "dense", "_PlanarWeightPass": "planar",
                "_WeightPass": "gather"}[kind]
    if hasattr(plan, "run"):
        return [name(plan.run)]
    return [name(plan.adjoint), name(plan.weight)]


@pytest.mark.parametrize("case", CASES, ids=[f"case{i}" for i in range(len(CASES))])
def test_explained_algorithms_are_the_ones_that_run(case):
    x_shape, weight_shape, options = case
    plans = fastconv.explain(x_shape, weight_shape, **options)
    assert [p.name for p in plans] == ["forward", "grad_input", "grad_weight"]
    nd = len(weight_shape) - 2
    x = np.ones(x_shape, np.float32)
    weight = np.ones(weight_shape, np.float32)
    convolution.clear_plans()
    y = getattr(fastconv, f"conv{nd}d")(x, weight, **options)
    (forward,) = convolution._PLANS.values()
    convolution.clear_plans()
    getattr(fastconv, f"conv{nd}d_backward")(x, weight, y, needs=("input", "weight"),
                                             **options)
    (backward,) = convolution._PLANS.values()
    assert [p.algorithm for p in plans] == _run_names(forward) + _run_names(backward)
    taps = int(np.prod(weight_shape[2:]))
    assert plans[0].flops == 2 * y.size * weight_shape[1] * taps
    assert all(p.workspace_bytes >= 0 and p.detail for p in plans)


def test_explain_refuses_bad_input_with_the_parameter_named():
    with pytest.raises(ValueError, match="stride"):
        fastconv.explain((1, 1, 8, 8), (1, 1, 3, 3), stride=0)
    with pytest.raises(ValueError, match="weight_shape"):
        fastconv.explain((1, 1, 8, 8), (1, 1))
    with pytest.raises(TypeError, match="dtype"):
        fastconv.explain((1, 1, 8, 8), (1, 1, 3, 3), dtype=np.complex64)


def test_explain_reports_copies_to_planes():
    """A depthwise layer on channels-last data: its forward pass, (stride 1) input gradient
    and (small planes) weight gradient run the depthwise kernel on the data in place; the
    others run on copies of the data as channels-first planes: explain names the planes'
    algorithm, says so, and counts the copies (input and output of the pass) in the
    workspace."""
    weight_shape, options = (64, 1, 3, 3), {"padding": 1, "groups": 64}
    small = fastconv.explain((4, 14, 14, 64), weight_shape, channels_last=True, **options)
    assert [p.algorithm for p in small] == ["depthwise"] * 3
    assert all("in place" in p.detail for p in small)
    for stride, in_place in ((1, {"forward", "grad_input"}), (2, {"forward", "grad_weight"})):
        last = fastconv.explain((4, 30, 30, 64), weight_shape, channels_last=True,
                                stride=stride, **options)
        first = fastconv.explain((4, 64, 30, 30), weight_shape, stride=stride, **options)
        out = 30 // stride
        copies = 4 * 64 * (30 * 30 + out * out) * 4  # float32 input and output
        for plan, planes in zip(last, first):
            if plan.name in in_place:
                assert plan.algorithm == "depthwise"
                assert "in place" in plan.detail and "copied" not in plan.detail
            else:
                assert plan.algorithm == planes.algorithm != "gather"
                assert "copied to channels-first planes" in plan.detail
                assert plan.workspace_bytes == planes.workspace_bytes + copies
