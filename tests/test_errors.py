"""The obvious bad inputs raise the documented exception, naming the offending parameter.

(The complete list, with messages checked for the received value and what is allowed, belongs
to the reliability work; this module pins the basics.)
"""

import numpy as np
import pytest

import fastconv

X = np.zeros((2, 4, 8, 7))
W = np.zeros((6, 4, 3, 3))


@pytest.mark.parametrize("stride", [0, (1, 0), -1])
def test_stride_below_one(stride):
    with pytest.raises(ValueError, match="stride"):
        fastconv.conv2d(X, W, stride=stride)


@pytest.mark.parametrize("dilation", [0, (0, 1)])
def test_dilation_below_one(dilation):
    with pytest.raises(ValueError, match="dilation"):
        fastconv.conv2d(X, W, dilation=dilation)


@pytest.mark.parametrize(("c_out", "groups"), [(6, 3), (5, 2), (6, 0)])
def test_groups_not_dividing(c_out, groups):
    """4 input channels, c_out outputs: groups must divide both (and be at least 1)."""
    weight = np.zeros((c_out, max(4 // max(groups, 1), 1), 3, 3))
    with pytest.raises(ValueError, match="groups"):
        fastconv.conv2d(X, weight, groups=groups)


@pytest.mark.parametrize("weight", [np.zeros((6, 4, 3)), np.zeros((6, 4, 3, 3, 3)),
                                    np.zeros((6, 4))])
def test_weight_wrong_ndim(weight):
    with pytest.raises(ValueError, match="weight"):
        fastconv.conv2d(X, weight)


@pytest.mark.parametrize("which", ["x", "weight"])
def test_complex_input_is_type_error(which):
    args = {"x": X, "weight": W}
    args[which] = args[which].astype(np.complex128)
    with pytest.raises(TypeError, match="complex"):
        fastconv.conv2d(args["x"], args["weight"])


@pytest.mark.parametrize("bad", [None, np.array(["a"] * 8), np.empty((2, 4, 8, 7), object)])
def test_non_numeric_input_is_type_error(bad):
    with pytest.raises(TypeError):
        fastconv.conv2d(bad, W)


@pytest.mark.parametrize("padding", ["SAME", "causal", "", "Valid"])
def test_unknown_padding_string(padding):
    with pytest.raises(ValueError, match="padding"):
        fastconv.conv2d(X, W, padding=padding)


@pytest.mark.parametrize("padding_mode", ["zero", "mirror", "wrap", "edge", "REFLECT"])
def test_unknown_padding_mode(padding_mode):
    with pytest.raises(ValueError, match="padding_mode"):
        fastconv.conv2d(X, W, padding=1, padding_mode=padding_mode)


@pytest.mark.parametrize(
    "out",
    [
        np.zeros((2, 6, 6, 6)),  # wrong shape
        np.zeros((2, 6, 6, 5), np.float32),  # wrong dtype (result is float64)
        np.zeros((2, 6, 5, 6)).transpose(0, 1, 3, 2),  # right shape, not C-contiguous
        np.zeros((2, 12, 6, 5))[:, ::2],  # right shape, strided
    ],
    ids=["shape", "dtype", "transposed", "strided"],
)
def test_out_wrong(out):
    with pytest.raises(ValueError, match="out"):
        fastconv.conv2d(X, W, out=out)


def test_out_read_only():
    out = np.zeros((2, 6, 6, 5))
    out.setflags(write=False)
    with pytest.raises(ValueError, match="out"):
        fastconv.conv2d(X, W, out=out)


def test_transposed_out_wrong_dtype():
    x = np.zeros((2, 4, 5, 5), np.float32)
    w = np.zeros((4, 3, 3, 3), np.float32)
    with pytest.raises(ValueError, match="out"):
        fastconv.conv_transpose2d(x, w, out=np.zeros((2, 3, 7, 7)))
