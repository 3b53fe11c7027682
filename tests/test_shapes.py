"""Pure shape helpers: ``conv_output_shape`` and ``receptive_field``."""

import itertools

import numpy as np
import pytest

import fastconv
import naive
from conftest import api

conv_output_shape = fastconv.conv_output_shape
receptive_field = fastconv.receptive_field


# --------------------------------------------------------------------------- conv_output_shape


@pytest.mark.parametrize(
    ("args", "kwargs", "expected"),
    [
        ((10, 3), {}, 8),
        ((10, 3), dict(stride=2), 4),
        ((10, 3), dict(padding=1), 10),
        ((10, 3), dict(padding="valid"), 8),
        ((10, 3), dict(padding="same"), 10),
        ((10, 4), dict(padding="same"), 10),
        ((10, 3), dict(padding="same", stride=3), 4),  # ceil(10 / 3)
        ((10, 3), dict(padding="same", stride=4, dilation=3), 3),
        ((10, 3), dict(padding="full"), 12),
        ((10, 3), dict(padding="full", dilation=2), 14),
        ((10, 3), dict(dilation=2), 6),
        ((10, 3), dict(stride=3, padding=2, dilation=2), 4),
        ((3, 3), {}, 1),
        ((224, 7), dict(stride=2, padding=3), 112),  # ResNet stem
        ((112, 3), dict(stride=2, padding=1), 56),  # ResNet max-pool
        ((227, 11), dict(stride=4), 55),  # AlexNet conv1
        ((4, 3), dict(stride=2, padding=1, transposed=True, output_padding=1), 8),
        ((4, 3), dict(stride=2, padding=1, transposed=True), 7),
        ((5, 4), dict(stride=2, padding=1, transposed=True), 10),  # DCGAN up-sampling
        ((5, 3), dict(stride=2, padding="same", transposed=True), 10),
        ((5, 3), dict(stride=2, padding="same", transposed=True, output_padding=1), 11),
        ((5, 3), dict(padding="valid", transposed=True), 7),
        ((5, 3), dict(padding="full", transposed=True), 3),
        ((5, 3), dict(stride=1, dilation=2, transposed=True, output_padding=1), 10),
        (((7, 6), (3, 2)), dict(stride=(2, 1)), (3, 5)),
        (((7, 6), (3, 2)), dict(padding=((1, 2), (0, 3)), dilation=(1, 2)), (8, 7)),
        (((7, 6), (3, 3)), dict(stride=(2, 3), padding="same"), (4, 2)),
        (((7, 6), 3), dict(padding=1), (7, 6)),
        (((7, 6, 5), (3, 3, 1)), dict(stride=2, padding=(1, 0, 2)), (4, 2, 5)),
        (((7, 6, 5), (2, 2, 2)), dict(padding="full", transposed=True, stride=(1, 2, 3)),
         (6, 10, 12)),
    ],
)
def test_known_values(args, kwargs, expected):
    got = conv_output_shape(*args, **kwargs)
    assert got == expected
    assert got == naive.conv_output_shape(*args, **kwargs)
    assert type(got) is type(expected)


@pytest.mark.parametrize("input_size", [(7, 6), [7, 6]])
def test_tuple_in_tuple_out(input_size):
    got = conv_output_shape(input_size, (3, 2), stride=(2, 1), padding=((1, 0), (2, 2)))
    assert got == (3, 9)
    assert isinstance(got, tuple)


def test_int_in_int_out():
    got = conv_output_shape(9, 3, stride=2, padding="same")
    assert got == 5 and type(got) is int


_GRID = list(itertools.product(
    [1, 4, 9],  # input size
    [1, 2, 3],  # kernel
    [1, 2, 3],  # stride
    [0, 2, (0, 3), (2, 1), "valid", "same", "full"],  # padding
    [1, 2],  # dilation
))


def test_grid_matches_formula():
    """Every combination in a grid agrees with the textbook formulas (where the output exists)."""
    checked = 0
    for n, k, s, p, d in _GRID:
        padding = (p,) if isinstance(p, tuple) else p
        expected = naive.conv_output_shape((n,), (k,), s, padding, d)
        if expected[0] < 1:
            continue
        assert conv_output_shape((n,), (k,), s, padding, d) == expected, (n, k, s, p, d)
        if not isinstance(p, tuple):
            assert conv_output_shape(n, k, s, p, d) == expected[0], (n, k, s, p, d)
        for op in range(max(s, d)):
            expected_t = naive.conv_output_shape((n,), (k,), s, padding, d, transposed=True,
                                                 output_padding=op)
            if expected_t[0] >= 1:
                got = conv_output_shape((n,), (k,), s, padding, d, transposed=True,
                                        output_padding=op)
                assert got == expected_t, (n, k, s, p, d, op)
        checked += 1
    assert checked > 200


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_agrees_with_the_engine(nd):
    """The shape helper predicts the shape the convolution functions actually return."""
    size, kernel = (9, 8, 7)[:nd], (3, 2, 4)[:nd]
    for stride, padding, dilation in [(1, 0, 1), (2, "same", 1), (3, "full", 2),
                                      ((2, 1, 3)[:nd], ((1, 2), (0, 0), (3, 1))[:nd], 1)]:
        expected = conv_output_shape(size, kernel, stride, padding, dilation)
        x = np.zeros((1, 1) + size)
        w = np.zeros((1, 1) + kernel)
        out = api("conv{nd}d", nd)(x, w, stride=stride, padding=padding, dilation=dilation)
        assert out.shape[2:] == expected
        xt = np.zeros((1, 1) + expected)
        transposed = api("conv_transpose{nd}d", nd)(xt, w, stride=stride, padding=padding,
                                                    dilation=dilation)
        assert transposed.shape[2:] == conv_output_shape(expected, kernel, stride, padding,
                                                         dilation, transposed=True)


# --------------------------------------------------------------------------- receptive_field


def test_empty_stack():
    assert receptive_field([]) == (1, 1)
    rf = receptive_field(iter(()))
    assert (rf.size, rf.jump) == (1, 1)


def test_three_3x3_convs():
    """Three stacked 3x3 stride-1 convs see 7x7 (the VGG argument for small kernels)."""
    assert receptive_field([(3,)] * 3) == (7, 1)
    assert receptive_field([(3, 1)] * 3) == (7, 1)
    assert receptive_field([(3, 1, 1)] * 3) == (7, 1)
    assert receptive_field([{"kernel_size": 3}] * 3) == (7, 1)
    rf = receptive_field([((3, 3),)] * 3)
    assert rf.size == (7, 7) and rf.jump == (1, 1)


def _vgg16(pool5=True):
    layers = []
    for n_convs in (2, 2, 3, 3, 3):
        layers += [(3, 1)] * n_convs + [(2, 2)]  # 2x2 stride-2 max-pooling as a strided layer
    return layers if pool5 else layers[:-1]


@pytest.mark.parametrize(
    ("layers", "size", "jump"),
    [
        pytest.param(_vgg16(pool5=False), 196, 16, id="vgg16-conv5_3"),
        pytest.param(_vgg16(), 212, 32, id="vgg16-pool5"),
        pytest.param([(11, 4), (3, 2), (5, 1), (3, 2), (3, 1), (3, 1), (3, 1), (3, 2)], 195, 32,
                     id="alexnet-pool5"),
        pytest.param([(2, 1, 2**i) for i in range(10)], 1024, 1, id="wavenet-block"),
        pytest.param([(3, 1, 1), (3, 1, 2), (3, 1, 4)], 15, 1, id="yu-koltun-dilated"),
        pytest.param([(7, 2), (3, 2)], 11, 4, id="resnet-stem"),
        pytest.param([(2, 2)] * 5, 32, 32, id="pooling-only"),
        pytest.param([(1, 1)] * 4, 1, 1, id="pointwise"),
    ],
)
def test_textbook_values(layers, size, jump):
    assert receptive_field(layers) == (size, jump)
    assert receptive_field(layers) == naive.receptive_field(layers)


def test_mapping_layers_and_defaults():
    layers = [
        {"kernel_size": 3},
        {"kernel_size": 3, "stride": 2},
        {"kernel_size": 3, "dilation": 2},
        {"kernel_size": 2, "stride": 2, "dilation": 1},
    ]
    assert receptive_field(layers) == (15, 4)
    # mixing tuple and mapping layers
    assert receptive_field([(3, 2), {"kernel_size": 3}]) == (7, 2)


def test_per_dim_tuples():
    rf = receptive_field([((3, 5), (1, 2)), ((3, 3),), ((3, 1), 1, (2, 1))])
    assert rf.size == (9, 9) and rf.jump == (1, 2)
    assert isinstance(rf.size, tuple) and isinstance(rf.jump, tuple)
    # a tuple only in one field still makes both fields tuples
    rf = receptive_field([(3, (1, 2)), (3,)])
    assert rf == ((5, 7), (1, 2))


def _measured_receptive_field(layers):
    """Size and jump found by back-propagating a unit gradient through a 1-D conv stack.

    Each layer is a 1-channel conv with an all-ones kernel, so the support of the input gradient
    of output position j is exactly the set of inputs that output sees.
    """
    size, jump = naive.receptive_field(layers)
    n = size + 3 * jump + 1  # room for a few outputs
    shapes = [n]
    for k, s, d in layers:
        shapes.append(naive.conv_output_size(shapes[-1], k, s, 0, 0, d))

    def support(j):
        grad = np.zeros((1, 1, shapes[-1]))
        grad[0, 0, j] = 1.0
        for (k, s, d), n_in in zip(reversed(layers), reversed(shapes[:-1]), strict=True):
            grad = naive.conv_input((1, 1, n_in), np.ones((1, 1, k)), grad, stride=s, dilation=d)
        return np.flatnonzero(grad[0, 0])

    first, second = support(0), support(1)
    return int(first[-1] - first[0] + 1), int(second[0] - first[0])


@pytest.mark.parametrize("seed", range(6))
def test_matches_measured_receptive_field(seed):
    rng = np.random.default_rng(seed)
    layers = [(int(rng.integers(1, 5)), int(rng.integers(1, 3)), int(rng.integers(1, 3)))
              for _ in range(int(rng.integers(1, 5)))]
    assert tuple(receptive_field(layers)) == _measured_receptive_field(layers)
