"""The vector primitives of ``fastconv._simd`` against plain NumPy indexing."""

import numpy as np
import pytest
from numba import njit

from fastconv._simd import (
    lanes_for,
    prefetch,
    prefetch_l2,
    veven_lanes,
    vinterleave_high,
    vinterleave_low,
    vleading,
    vload,
    vload_between,
    vload_every,
    vodd_lanes,
    vslide_down,
    vslide_up,
    vstore,
    vstore_every,
    vstore_leading,
    vstore_masked,
    vtranspose_copy,
    vtranspose_copy_partial,
    vtranspose_copy_window,
    vtranspose_interleave,
    vtranspose_spread,
)


@njit(cache=False)
def _transpose_copy(src, src_off, src_step, dst, dst_off, dst_step):
    vtranspose_copy(src, src_off, src_step, dst, dst_off, dst_step)


@njit(cache=False)
def _transpose_copy_partial(src, src_off, src_step, dst, dst_off, dst_step, count):
    vtranspose_copy_partial(src, src_off, src_step, dst, dst_off, dst_step, count)


@njit(cache=False)
def _transpose_copy_window(src, src_off, src_step, dst, dst_off, dst_step, count, width):
    vtranspose_copy_window(src, src_off, src_step, dst, dst_off, dst_step, count, width)


@njit(cache=False)
def _transpose_interleave(src, src_off, src_step, dst, dst_off, dst_step):
    vtranspose_interleave(src, src_off, src_step, dst, dst_off, dst_step)


@njit(cache=False)
def _transpose_spread(src, src_off, src_step, dst, dst_off, dst_step):
    vtranspose_spread(src, src_off, src_step, dst, dst_off, dst_step)


@njit(cache=False)
def _prefetched_sum(mem, offsets):
    for off in offsets:
        prefetch(mem, off)
        prefetch_l2(mem, off)
    return mem.sum()


@njit(cache=False)
def _slid(row, lanes, out):
    a, b, c = vload(row, 0), vload(row, lanes), vload(row, 2 * lanes)
    vstore(out, 0, vslide_up(a, b))
    vstore(out, lanes, vslide_down(b, c))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_slides_shift_a_row_by_one_element(dtype):
    """``vslide_up(a, b)`` is the vector one element left of ``b`` in the row ``a, b``, and
    ``vslide_down(b, c)`` the one right of it."""
    lanes = lanes_for(dtype)
    row = np.arange(3 * lanes, dtype=dtype) * 1.5 - 7
    out = np.empty(2 * lanes, dtype)
    _slid(row, lanes, out)
    np.testing.assert_array_equal(out[:lanes], row[lanes - 1:2 * lanes - 1])
    np.testing.assert_array_equal(out[lanes:], row[lanes + 1:2 * lanes + 1])


@njit(cache=False)
def _store_leading_lanes(vec_src, out, off, count, masked):
    vec = vload(vec_src, 0)
    if masked:
        vstore_masked(out, off, vec, count)
    else:
        vstore_leading(out, off, vec, count)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("masked", [False, True])
def test_leading_stores_write_the_first_count_lanes_only(dtype, masked):
    """``vstore_leading`` and ``vstore_masked`` write lanes ``[0, count)`` and leave the
    memory around them as it was, for every count: none at or below zero, all at or above
    the lane count."""
    lanes = lanes_for(dtype)
    vec = np.arange(1, lanes + 1, dtype=dtype)
    for count in (-3, 0, 1, lanes // 2, lanes - 1, lanes, lanes + 5):
        out = np.full(lanes + 4, -1.0, dtype)
        _store_leading_lanes(vec, out, 2, count, masked)
        written = min(max(count, 0), lanes)
        expected = np.full(lanes + 4, -1.0, dtype)
        expected[2:2 + written] = vec[:written]
        np.testing.assert_array_equal(out, expected, err_msg=f"count {count}")


@njit(cache=False)
def _load_between(mem, off, lo, hi, out):
    vstore(out, 0, vload_between(mem, off, lo, hi))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_load_between_reads_lanes_lo_to_hi_only(dtype):
    """``vload_between(mem, off, lo, hi)`` holds ``mem[off + lane]`` for ``lo <= lane < hi``
    and zeros elsewhere, for windows reaching before the memory's first element (the
    masked lanes are not read: NaNs there never show) and past its last."""
    lanes = lanes_for(dtype)
    # the memory the lanes may read is the middle; NaNs around it stand for what the masked
    # lanes must not read
    row = np.full(3 * lanes, np.nan, dtype)
    row[lanes:2 * lanes] = np.arange(1, lanes + 1, dtype=dtype)
    inner = row[lanes:2 * lanes]
    for lo, hi in ((0, lanes), (1, lanes), (3, lanes - 2), (0, 1), (lanes - 1, lanes),
                   (2, 2), (5, 3), (-4, lanes + 9)):
        for shift in (-3, 0, 2):
            out = np.full(lanes, -1.0, dtype)
            off = lanes + shift  # lane k reads row[lanes + shift + k]
            _load_between(row, off, max(lo, -shift), min(hi, lanes - shift), out)
            expected = np.zeros(lanes, dtype)
            for k in range(max(lo, -shift, 0), min(hi, lanes - shift, lanes)):
                expected[k] = inner[shift + k]
            np.testing.assert_array_equal(out, expected, err_msg=f"{lo} {hi} {shift}")


@njit(cache=False)
def _evens_and_odds(row, lanes, out):
    pair = (vload(row, 1), vload(row, 1 + lanes))
    vstore(out, 0, veven_lanes(pair[0], pair[1]))
    vstore(out, lanes, vodd_lanes(pair[0], pair[1]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_even_and_odd_lanes_split_two_vectors_into_every_other_element(dtype):
    lanes = lanes_for(dtype)
    row = np.arange(2 * lanes + 1, dtype=dtype) * 0.5 - 3
    out = np.empty(2 * lanes, dtype)
    _evens_and_odds(row, lanes, out)
    np.testing.assert_array_equal(out[:lanes], row[1:2 * lanes + 1:2])
    np.testing.assert_array_equal(out[lanes:], row[2:2 * lanes + 1:2])


@njit(cache=False)
def _every(mem, off, step, count, out):
    vstore(out, 0, vload_every(mem, off, step, count))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("step", [1, 2, 3, 7, -2])
def test_strided_loads_read_count_lanes_and_nothing_else(dtype, step):
    """``vload_every(mem, off, step, count)`` reads ``mem[off + i * step]`` for ``i <
    count``, zeros in the other lanes (the buffer holds exactly the lanes read)."""
    lanes = lanes_for(dtype)
    for count in (-1, 0, 1, 3, lanes - 1, lanes, lanes + 2):
        kept = min(max(count, 0), lanes)
        size = max(1, (kept - 1) * abs(step) + 1)
        mem = np.arange(size, dtype=dtype) + 1.25
        off = size - 1 if step < 0 else 0
        out = np.full(lanes, np.nan, dtype)
        _every(mem, off, step, count, out)
        np.testing.assert_array_equal(out[:kept], mem[off + np.arange(kept) * step])
        assert (out[kept:] == 0).all()


@njit(cache=False)
def _leading(row, count, out):
    vstore(out, 0, vleading(vload(row, 0), count))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_leading_lanes_keep_count_lanes_and_zero_the_rest(dtype):
    """``vleading(v, count)`` zeroes lanes ``count`` on, infinities and NaNs included."""
    lanes = lanes_for(dtype)
    row = np.full(lanes, np.inf, dtype)
    row[1] = np.nan
    out = np.empty(lanes, dtype)
    for count in (-1, 0, 1, 2, lanes - 1, lanes, lanes + 3):
        _leading(row, count, out)
        kept = min(max(count, 0), lanes)
        np.testing.assert_array_equal(out[:kept], row[:kept])
        assert (out[kept:] == 0).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_prefetches_change_nothing_and_never_fault(dtype):
    """``prefetch`` and ``prefetch_l2`` are hints: offsets past either end of the buffer
    (by a page, even) neither fault nor change a value."""
    mem = np.arange(40, dtype=dtype)
    before = mem.copy()
    total = _prefetched_sum(mem, np.array([0, 39, 40, 57, 4096, -1, -4096], np.int64))
    assert total == before.sum()
    np.testing.assert_array_equal(mem, before)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("steps", [(0, 1, 0, 0, 0, 2), (3, 2, 1, 5, 0, 5), (11, 1, 1, 2, 0, -3)])
def test_transposed_blocks(dtype, steps):
    """``vtranspose_copy`` writes ``dst[d + j*ds + i] = src[s + i*ss + j]``;
    ``vtranspose_interleave`` writes ``dst[d + j*ds + 2*i]`` and leaves every element in
    between, and everything else, bit for bit as it was (NaN payloads included)."""
    lanes = lanes_for(dtype)
    # offsets and steps in lanes plus elements ((0, 8, 0, 16), (3, 17, 5, 40) and
    # (11, 9, 2, -24) with 8 lanes): rows of the interleaved block never overlap
    src_off, src_lanes, src_extra, dst_off, dst_extra, dst_lanes = steps
    src_step = src_lanes * lanes + src_extra
    dst_step = dst_lanes * lanes + dst_extra
    if dst_step < 0:
        dst_off -= (lanes - 1) * dst_step
    rng = np.random.default_rng(5)
    src = rng.standard_normal(src_off + lanes * abs(src_step) + lanes).astype(dtype)
    size = dst_off + lanes * abs(dst_step) + 2 * lanes
    before = rng.standard_normal(size).astype(dtype)
    before[1::3] = np.nan  # unchanged bits, whatever they are
    rows, cols = np.meshgrid(np.arange(lanes), np.arange(lanes), indexing="ij")
    values = src[src_off + rows * src_step + cols]  # values[i, j]

    copied = before.copy()
    _transpose_copy(src, src_off, src_step, copied, dst_off, dst_step)
    expected = before.copy()
    expected[dst_off + cols * dst_step + rows] = values
    assert copied.tobytes() == expected.tobytes()

    interleaved = before.copy()
    _transpose_interleave(src, src_off, src_step, interleaved, dst_off, dst_step)
    expected = before.copy()
    expected[dst_off + cols * dst_step + 2 * rows] = values
    assert interleaved.tobytes() == expected.tobytes()
    spread = before.copy()
    _transpose_spread(src, src_off, src_step, spread, dst_off, dst_step)
    assert spread.tobytes() == expected.tobytes()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_transposed_spread_reaches_no_element_in_between(dtype):
    """``vtranspose_spread`` writes through masked stores: the destination's last element
    (after the last written one) may lie past the end of the memory (masked, not accessed),
    and the elements in between keep their values."""
    lanes = lanes_for(dtype)
    src = np.arange(lanes * lanes, dtype=dtype)
    # rows of 2 * lanes elements, the last row one short: its last written element is the
    # buffer's last
    dst = np.full(2 * lanes * lanes - 1, -1.0, dtype)
    _transpose_spread(src, 0, lanes, dst, 0, 2 * lanes)
    rows, cols = np.meshgrid(np.arange(lanes), np.arange(lanes), indexing="ij")
    assert np.array_equal(dst[::2], src[rows * lanes + cols].T.reshape(-1))
    assert (dst[1::2] == -1.0).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("short", [None, 0, 1, 3, -1])
def test_transposed_partial_blocks(dtype, short):
    """``vtranspose_copy_partial`` writes the first ``count`` transposed rows only (all of
    them for ``count >= lanes``, none for ``count <= 0``) and leaves everything else bit for
    bit as it was; the source ends at its last row's column ``count`` (masked loads)."""
    lanes = lanes_for(dtype)
    counts = {None: (lanes, lanes + 5), 0: (0, -3), -1: (lanes - 1,)}.get(short, (short,))
    src_step, dst_step, dst_off = lanes + 3, lanes + 2, 4
    rng = np.random.default_rng(7)
    for count in counts:
        used = max(0, min(count, lanes))
        whole = rng.standard_normal((lanes - 1) * src_step + lanes + 8).astype(dtype)
        src = whole[: (lanes - 1) * src_step + max(used, 1)]
        before = rng.standard_normal(dst_off + lanes * dst_step + lanes).astype(dtype)
        before[2::5] = np.nan
        copied = before.copy()
        _transpose_copy_partial(src, 0, src_step, copied, dst_off, dst_step, count)
        expected = before.copy()
        rows, cols = np.meshgrid(np.arange(lanes), np.arange(used), indexing="ij")
        expected[dst_off + cols * dst_step + rows] = src[rows * src_step + cols]
        assert copied.tobytes() == expected.tobytes(), count


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("width", [0, 1, 5, -1, None])
def test_transposed_windows(dtype, width):
    """``vtranspose_copy_window`` writes lanes ``[0, width)`` of the first ``count``
    transposed rows only, and leaves everything else bit for bit as it was."""
    lanes = lanes_for(dtype)
    widths = {None: (lanes, lanes + 2), 0: (0, -1), -1: (lanes - 1,)}.get(width, (width,))
    src_step, dst_step, dst_off = lanes + 3, lanes + 2, 4
    rng = np.random.default_rng(8)
    for shown in widths:
        for count in (lanes, 3, 0):
            src = rng.standard_normal((lanes - 1) * src_step + lanes).astype(dtype)
            before = rng.standard_normal(dst_off + lanes * dst_step + lanes).astype(dtype)
            before[3::7] = np.nan
            copied = before.copy()
            _transpose_copy_window(src, 0, src_step, copied, dst_off, dst_step, count, shown)
            expected = before.copy()
            rows, cols = np.meshgrid(np.arange(max(0, min(shown, lanes))),
                                     np.arange(max(0, min(count, lanes))), indexing="ij")
            expected[dst_off + cols * dst_step + rows] = src[rows * src_step + cols]
            assert copied.tobytes() == expected.tobytes(), (shown, count)


@njit(cache=False)
def _store_every(row, off, step, out, count):
    vstore_every(out, off, step, vload(row, 0), count)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("step", [1, 2, 3, -2])
def test_strided_stores_write_count_lanes_and_nothing_else(dtype, step):
    """``vstore_every(mem, off, step, vec, count)`` writes ``mem[off + i * step]`` for
    ``i < count`` (step 2 through masked stores of two spread vectors, others a scatter)
    and leaves every other element, the ones in between included, untouched."""
    lanes = lanes_for(dtype)
    row = np.arange(lanes, dtype=dtype) * 2.5 + 1
    for count in (-1, 0, 1, 3, lanes // 2, lanes // 2 + 1, lanes - 1, lanes, lanes + 2):
        kept = min(max(count, 0), lanes)
        out = np.full(2 * abs(step) * lanes + 2, np.nan, dtype)
        off = out.size - 2 if step < 0 else 1
        _store_every(row, off, step, out, count)
        written = off + np.arange(kept) * step
        np.testing.assert_array_equal(out[written], row[:kept])
        others = np.ones(out.size, bool)
        others[written] = False
        assert np.isnan(out[others]).all()


@njit(cache=False)
def _interleaved(row, lanes, out):
    a, b = vload(row, 0), vload(row, lanes)
    vstore(out, 0, vinterleave_low(a, b))
    vstore(out, lanes, vinterleave_high(a, b))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_interleaves_alternate_the_lanes_of_two_vectors(dtype):
    lanes = lanes_for(dtype)
    row = np.arange(2 * lanes, dtype=dtype) - 3.5
    out = np.empty(2 * lanes, dtype)
    _interleaved(row, lanes, out)
    expected = np.empty(2 * lanes, dtype)
    expected[0::2], expected[1::2] = row[:lanes], row[lanes:]
    np.testing.assert_array_equal(out, expected)
