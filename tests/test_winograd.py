"""The Winograd F(2x2, 3x3) kernel against the naive reference, and where the plan takes it.

``convolution.FORCE_FORWARD_ALGORITHM = "winograd"`` runs every 3x3 stride-1 layer (forward,
input gradient, stride-1 transposed convolution) on it whatever its channels; a spy on
``_winograd.run_winograd`` checks that the kernel, not the direct fallback, ran.
"""

import numpy as np
import pytest

import fastconv
import naive
from conftest import assert_close, to_channels_last
from fastconv import _winograd, convolution

# (batch, c_in, c_out, size, padding, dilation): odd and even sizes (a last tile with one row or
# column), one-pixel outputs, asymmetric pads, channels past a vector
SHAPES = [
    (2, 64, 64, (9, 11), 1, 1),
    (1, 3, 5, (7, 6), 0, 1),
    (2, 17, 40, (12, 13), ((2, 1), (0, 2)), 1),
    (1, 48, 16, (4, 4), 0, 1),
    (2, 32, 33, (8, 8), "same", 1),
    (1, 1, 1, (3, 3), 0, 1),
    (3, 20, 70, (5, 31), ((1, 0), (2, 2)), 1),
    (2, 130, 36, (2, 17), 2, 1),
    # dilated: a convolution per row and column phase, phases of unequal sizes
    (2, 24, 40, (13, 12), 2, 2),
    (1, 16, 20, (11, 17), ((1, 3), (0, 2)), (1, 3)),
    (2, 40, 8, (15, 9), "same", (3, 2)),
    (1, 8, 8, (5, 7), 0, (2, 1)),
    # several tasks' blocks of tile rows down a phase
    (1, 12, 20, (50, 20), 1, 1),
    (1, 8, 16, (61, 30), 2, 2),
]
IDS = [f"shape{i}" for i in range(len(SHAPES))]


@pytest.fixture
def winograd_runs(monkeypatch):
    """Force the Winograd kernel and count its runs."""
    monkeypatch.setattr(convolution, "FORCE_FORWARD_ALGORITHM", "winograd")
    runs = []
    original = _winograd.run_winograd

    def spy(*args):
        runs.append(args[0])
        return original(*args)

    monkeypatch.setattr(_winograd, "run_winograd", spy)
    return runs


def _data(shape, dtype, seed):
    n, c_in, c_out, size = shape[:4]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c_in, *size)).astype(dtype)
    weight = rng.standard_normal((c_out, c_in, 3, 3)).astype(dtype)
    bias = rng.standard_normal(c_out).astype(dtype)
    return x, weight, bias


@pytest.mark.parametrize("shape", SHAPES, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("channels_last", [False, True])
def test_winograd_forward_matches_naive(winograd_runs, shape, dtype, channels_last):
    x, weight, bias = _data(shape, dtype, 1)
    options = {"padding": shape[4], "dilation": shape[5]}
    expected = naive.conv(x, weight, bias, **options)
    data = np.ascontiguousarray(to_channels_last(x)) if channels_last else x
    got = fastconv.conv2d(data, weight, bias, channels_last=channels_last, **options)
    assert len(winograd_runs) == 1
    if channels_last:
        expected = to_channels_last(expected)
    assert_close(got, expected, shape[1] * 9, dtype)
    # without a bias
    got = fastconv.conv2d(data, weight, channels_last=channels_last, **options)
    unbiased = naive.conv(x, weight, **options)
    assert_close(got, to_channels_last(unbiased) if channels_last else unbiased,
                 shape[1] * 9, dtype)


@pytest.mark.parametrize("shape", SHAPES, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("channels_last", [False, True])
def test_winograd_input_gradient_matches_naive(winograd_runs, shape, dtype, channels_last):
    x, weight, _ = _data(shape, dtype, 2)
    options = {"padding": shape[4], "dilation": shape[5]}
    rng = np.random.default_rng(3)
    grad = rng.standard_normal(naive.conv(x, weight, **options).shape).astype(dtype)
    expected = naive.conv_input(x.shape, weight, grad, **options)
    shape_arg, grad_arg = x.shape, grad
    if channels_last:
        expected = to_channels_last(expected)
        shape_arg = expected.shape
        grad_arg = np.ascontiguousarray(to_channels_last(grad))
    got = fastconv.conv2d_input(shape_arg, weight, grad_arg, channels_last=channels_last,
                                **options)
    # an adjoint whose windows reach no input is all zeros (no kernel runs)
    assert len(winograd_runs) == (1 if np.any(expected) else len(winograd_runs))
    assert_close(got, expected, shape[2] * 9, dtype)


@pytest.mark.parametrize("padding", [0, 1, 3])
def test_winograd_transposed_matches_naive(winograd_runs, padding):
    # a stride-1 transposed convolution is the input gradient of a forward one; with
    # padding 3 its stride-1 forward convolution crops the input (a pad of -1 each side)
    x, weight, bias = _data((2, 24, 40, (9, 12)), np.float64, 4)
    weight_t = np.ascontiguousarray(weight.transpose(1, 0, 2, 3))  # in 24 -> out 40
    got = fastconv.conv_transpose2d(x, weight_t, bias, padding=padding)
    sizes = tuple(n + 2 - 2 * padding for n in x.shape[2:])
    expected = naive.conv_input((2, 40, *sizes), weight_t, x, padding=padding)
    expected += bias.reshape(1, -1, 1, 1)
    assert len(winograd_runs) == 1
    assert_close(got, expected, 24 * 9, np.float64)


def test_winograd_results_do_not_depend_on_thread_count(winograd_runs):
    import numba

    x, weight, bias = _data((4, 40, 72, (30, 17)), np.float32, 5)
    results = []
    for threads in (1, numba.config.NUMBA_NUM_THREADS):
        numba.set_num_threads(threads)
        try:
            results.append(fastconv.conv2d(x, weight, bias, padding=1))
        finally:
            numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    np.testing.assert_array_equal(results[0], results[1])
    assert len(winograd_runs) == 2


def test_winograd_reads_strided_views_and_leaves_them_alone(winograd_runs):
    x, weight, bias = _data((2, 24, 40, (20, 22)), np.float64, 6)
    base = np.repeat(x, 2, axis=3)  # every other column: a non-unit column stride
    view = base[:, :, :, ::2]
    before = base.copy()
    got = fastconv.conv2d(view, weight, bias, padding=1)
    np.testing.assert_array_equal(base, before)
    assert_close(got, naive.conv(x, weight, bias, padding=1), 24 * 9, np.float64)
    assert len(winograd_runs) == 1
    # a negative stride: the direct kernel runs it
    flipped = x[:, :, ::-1]
    got = fastconv.conv2d(flipped, weight, bias, padding=1)
    assert_close(got, naive.conv(np.ascontiguousarray(flipped), weight, bias, padding=1),
                 24 * 9, np.float64)
    assert len(winograd_runs) == 1


def _shrinking_budget(monkeypatch, mode):
    """Spare memory just short of what a call's plans take before they go in ``mode``.

    The budget falls in steps of 2% of the unlimited workspace, from it, until the plan is
    ``"chunked"`` (output channels in chunks) or ``"grouped"`` (a task's tile filled a group
    of input channels at a time), or none fits.
    """
    plan = _winograd.winograd_plan  # a forced Winograd kernel plans with no memory limit

    def planned(*args):
        whole = plan(*args[:8]).workspace_bytes
        for step in range(50):
            smaller = plan(*args[:8], whole * (1 - 0.02 * step))
            if smaller is None or _mode(smaller) == mode:
                return smaller
        return None

    monkeypatch.setattr(_winograd, "winograd_plan", planned)


def _mode(plan):
    if plan.chunks > 1:
        _, blocks, _, block = plan.transformed_shape
        assert plan.chunk_channels == blocks * block < plan.channels
        return "chunked"
    return "grouped" if plan.dims[_winograd._G] < plan.dims[_winograd._CP] else "whole"


# (batch, c_in, c_out, size, padding, dilation): chunks of output channels, a short last one;
# input channels past a fill's group of channels (FILL_CHANNELS)
CHUNKED = [
    (2, 100, 150, (13, 11), 1, 1),
    (1, 70, 96, (9, 16), ((0, 2), (1, 1)), 1),
    (2, 72, 100, (12, 11), 2, 2),
]


# a dilated layer's tile holds all of its channels: chunked only
LOW_MEMORY = [(shape, mode) for shape in CHUNKED for mode in ("chunked", "grouped")
              if mode == "chunked" or shape[5] == 1]


@pytest.mark.parametrize(("shape", "mode"), LOW_MEMORY,
                         ids=[f"{mode}{CHUNKED.index(shape)}" for shape, mode in LOW_MEMORY])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("channels_last", [False, True])
def test_low_memory_winograd_matches_naive(winograd_runs, monkeypatch, shape, mode, dtype,
                                           channels_last):
    _shrinking_budget(monkeypatch, mode)
    x, weight, bias = _data(shape, dtype, 11)
    options = {"padding": shape[4], "dilation": shape[5]}
    data = np.ascontiguousarray(to_channels_last(x)) if channels_last else x
    got = fastconv.conv2d(data, weight, bias, channels_last=channels_last, **options)
    expected = naive.conv(x, weight, bias, **options)
    assert_close(got, to_channels_last(expected) if channels_last else expected,
                 shape[1] * 9, dtype)
    # the input gradient: the flipped weights' chunks
    grad = np.random.default_rng(12).standard_normal(expected.shape).astype(dtype)
    expected = naive.conv_input(x.shape, weight, grad, **options)
    if channels_last:
        got = fastconv.conv2d_input(to_channels_last(expected).shape, weight,
                                    np.ascontiguousarray(to_channels_last(grad)),
                                    channels_last=True, **options)
        expected = to_channels_last(expected)
    else:
        got = fastconv.conv2d_input(x.shape, weight, grad, **options)
    assert_close(got, expected, shape[2] * 9, dtype)
    assert [_mode(plan) for plan in winograd_runs] == [mode, mode]


def test_chunked_winograd_volume_matches_naive(winograd_runs, monkeypatch):
    _shrinking_budget(monkeypatch, "chunked")
    rng = np.random.default_rng(13)
    x = rng.standard_normal((2, 20, 6, 5, 7))
    weight = rng.standard_normal((70, 20, 3, 3, 3))
    bias = rng.standard_normal(70)
    got = fastconv.conv3d(x, weight, bias, padding=1)
    assert_close(got, naive.conv(x, weight, bias, padding=1), 20 * 27, np.float64)
    assert [_mode(plan) for plan in winograd_runs] == ["chunked"]


def test_winograd_gives_way_when_its_workspace_does_not_fit(monkeypatch):
    from fastconv import _plan

    monkeypatch.setattr(_winograd, "PREFERRED", True)  # the plan's choice on any host
    runs = []
    original = _winograd.run_winograd
    monkeypatch.setattr(_winograd, "run_winograd", lambda *a: (runs.append(a[0]), original(*a)))
    x, weight, bias = _data((8, 64, 64, (40, 40)), np.float32, 7)
    expected = naive.conv(x, weight, bias, padding=1)
    # the spare memory shrinks: fewer rows of tiles per task, then the direct kernel
    rows = []
    for extra in (0.25, 0.15, 0.12, 0.1, 0.0):
        monkeypatch.setattr(_plan, "EXTRA_MEMORY", extra)
        before = len(runs)
        got = fastconv.conv2d(x, weight, bias, padding=1)
        assert_close(got, expected, 64 * 9, np.float32)
        if len(runs) > before:
            plan = runs[-1]
            rows.append(int(plan.dims[_winograd.ROWS]))
            assert plan.workspace_bytes <= extra * (2 * x.nbytes + weight.nbytes)
    assert len(rows) >= 2 and rows[0] > rows[-1] and rows == sorted(rows, reverse=True)
    assert len(runs) < 5  # no spare memory at all: the direct kernel


def test_transformed_weights_are_g_g_gt():
    rng = np.random.default_rng(8)
    weight = rng.standard_normal((37, 5, 3, 3))
    g = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])
    expected = np.einsum("ai,kcij,bj->abkc", g, weight, g).reshape(16, 37, 5)
    # flipped taps (an adjoint's kernel), output channels backwards, channels swapped
    for view in (weight, weight[:, :, ::-1, ::-1], weight[::-1, :, :, ::-1],
                 weight.transpose(1, 0, 3, 2)):
        k_n, c_n = view.shape[:2]
        shape = _winograd.transformed_shape(k_n, c_n, view.dtype)
        got = _winograd.transform_weights(view, np.full(shape, np.nan))
        _, blocks, cp, block = shape
        flat = got.transpose(0, 1, 3, 2).reshape(16, blocks * block, cp)
        want = expected if view is weight else np.einsum(
            "ai,kcij,bj->abkc", g, view, g).reshape(16, k_n, c_n)
        np.testing.assert_allclose(flat[:, :k_n, :c_n], want, rtol=1e-15, atol=1e-15)
        assert not np.any(flat[:, k_n:]) and not np.any(flat[:, :, c_n:])


def test_plan_takes_winograd_for_wide_3x3_stride_1_layers():
    preferred = _winograd.PREFERRED
    for x_shape, w_shape, options, expected in [
        ((8, 64, 56, 56), (64, 64, 3, 3), {"padding": 1}, ("winograd", "phases/winograd")),
        ((8, 128, 28, 28), (128, 128, 3, 3), {"padding": 1},
         ("winograd", "phases/winograd")),
        ((8, 64, 28, 28), (64, 64, 3, 3), {"padding": 2, "dilation": 2},
         ("winograd", "phases/winograd")),
        ((8, 128, 28, 28), (256, 128, 3, 3), {"padding": 1, "stride": 2},
         ("dense", "phases/dense")),
        # no room for 4 MiB of transformed weights beside 1.6 MB operands: 4 chunks
        ((8, 256, 14, 14), (256, 256, 3, 3), {"padding": 1},
         ("winograd", "phases/winograd")),
        # one sample: not even for a chunk of 64 output channels
        ((1, 256, 14, 14), (256, 256, 3, 3), {"padding": 1}, ("dense", "phases/dense")),
        # no room (one sample): the kernel the plan chooses without Winograd, here planar
        ((1, 16, 56, 56), (16, 16, 3, 3), {"padding": 1}, ("planar", "phases/planar")),
        # a volume, and its input gradient with one vector of output channels
        ((2, 16, 32, 32, 32), (32, 16, 3, 3, 3), {"padding": 1},
         ("winograd", "phases/winograd")),
        # too few channels: 8 of them
        ((2, 32, 32, 32, 32), (8, 32, 3, 3, 3), {"padding": 1}, ("planar", "phases/dense")),
        ((8, 32, 56, 56), (8, 32, 3, 3), {"padding": 1}, ("planar", "phases/dense")),
    ]:
        plans = fastconv.explain(x_shape, w_shape, **options)
        if not preferred:
            expected = tuple(e.replace("winograd", "dense") for e in expected)
        assert (plans[0].algorithm, plans[1].algorithm) == expected, (x_shape, w_shape)
        chunked = "in 4 chunks of 64" in plans[0].detail
        assert chunked == (preferred and x_shape == (8, 256, 14, 14)), plans[0].detail
    # 16 channels are enough in float32 (a vector) and in float64 (two); 8 in neither
    narrow = ((8, 16, 56, 56), (16, 16, 3, 3))
    for dtype in (np.float32, np.float64):
        chosen = fastconv.explain(*narrow, padding=1, dtype=dtype)[0].algorithm
        assert (chosen == "winograd") == preferred
    assert fastconv.explain((8, 8, 56, 56), (8, 8, 3, 3), padding=1,
                            dtype=np.float64)[0].algorithm != "winograd"


# (batch, c_in, c_out, size, padding) of 3x3x3 layers: F(2x2x2, 3x3x3)
VOLUMES = [
    (1, 3, 5, (4, 5, 6), 1),
    (2, 16, 32, (5, 6, 7), 1),
    (1, 20, 40, (3, 9, 4), ((0, 1), (2, 0), (1, 1))),
    (1, 8, 8, (3, 3, 4), 0),  # one output plane: a tile's second plane absent
    (1, 4, 6, (7, 30, 22), 1),  # several tasks' blocks of tile rows
]
VOLUME_IDS = [f"volume{i}" for i in range(len(VOLUMES))]


@pytest.mark.parametrize("shape", VOLUMES, ids=VOLUME_IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("channels_last", [False, True])
def test_winograd_volume_matches_naive(winograd_runs, shape, dtype, channels_last):
    n, c_in, c_out, size, padding = shape
    rng = np.random.default_rng(9)
    x = rng.standard_normal((n, c_in, *size)).astype(dtype)
    weight = rng.standard_normal((c_out, c_in, 3, 3, 3)).astype(dtype)
    bias = rng.standard_normal(c_out).astype(dtype)
    expected = naive.conv(x, weight, bias, padding=padding)
    data = np.ascontiguousarray(to_channels_last(x)) if channels_last else x
    got = fastconv.conv3d(data, weight, bias, padding=padding, channels_last=channels_last)
    assert len(winograd_runs) == 1
    assert_close(got, to_channels_last(expected) if channels_last else expected, c_in * 27,
                 dtype)
    grad = rng.standard_normal(expected.shape).astype(dtype)
    expected = naive.conv_input(x.shape, weight, grad, padding=padding)
    grad_arg = np.ascontiguousarray(to_channels_last(grad)) if channels_last else grad
    shape_arg = to_channels_last(expected).shape if channels_last else x.shape
    got = fastconv.conv3d_input(shape_arg, weight, grad_arg, padding=padding,
                                channels_last=channels_last)
    assert len(winograd_runs) == 2
    assert_close(got, to_channels_last(expected) if channels_last else expected, c_out * 27,
                 dtype)


def test_transformed_volume_weights_are_g_g_gt_along_each_axis():
    rng = np.random.default_rng(10)
    weight = rng.standard_normal((35, 3, 3, 3, 3))
    g = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])
    shape = _winograd.transformed_shape(35, 3, weight.dtype, volume=True)
    got = _winograd.transform_weights(weight, np.full(shape, np.nan))
    _, blocks, cp, block = shape
    flat = got.transpose(0, 1, 3, 2).reshape(64, blocks * block, cp)
    expected = np.einsum("ai,bj,ck,KCijk->abcKC", g, g, g, weight).reshape(64, 35, 3)
    np.testing.assert_allclose(flat[:, :35, :3], expected, rtol=1e-14, atol=1e-14)
    assert not np.any(flat[:, 35:]) and not np.any(flat[:, :, 3:])
