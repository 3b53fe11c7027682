"""Calls by address (``fastconv._jit.address_of`` / ``caller``): what kernels use to run
their task functions without linking a copy of them."""

import numba
import numpy as np
import pytest
from numba import njit, types
from numba.core.errors import TypingError

from fastconv import _dense, _dense_weight, _depthwise, _jit, _kernels, _planar, _pointwise


@njit
def _scaled_add(x, y, a, n):
    """``y[:n] += a * x[:n]`` (the callee: its result is dropped, it works in place)."""
    for i in range(n):
        y[i] += a * x[i]


def _scaled_add_signature(dtype):
    item = numba.from_dtype(dtype)
    return (types.Array(item, 1, "A", readonly=True), types.Array(item, 1, "C"), item,
            types.int64)


_call_scaled_add = _jit.caller(_scaled_add_signature)


@njit
def _twice(address, x, y, a):
    _call_scaled_add(address, (x, y, a, np.int64(x.shape[0])))
    _call_scaled_add(address, (x, y, a, x.shape[0]))  # intp converts to int64


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_call_by_address_runs_the_compiled_function(dtype):
    address = _jit.address_of(_scaled_add, _scaled_add_signature, np.dtype(dtype))
    assert address == _jit.address_of(_scaled_add, _scaled_add_signature, np.dtype(dtype))
    assert _scaled_add_signature(np.dtype(dtype)) in _scaled_add.signatures
    source = np.arange(10, dtype=dtype)
    x = source[::2]  # strided, writeable: passed for a read-only parameter of any layout
    y = np.ones(5, dtype)
    _twice(address, x, y, dtype(3))
    np.testing.assert_array_equal(y, 1 + 2 * 3 * x)
    np.testing.assert_array_equal(source, np.arange(10, dtype=dtype))  # the input untouched


@pytest.mark.parametrize("arguments, wrong", [
    ("(x, y, 2.0)", "arguments for"),  # one missing
    ("(x, y[::2], 2.0, 3)", "passed for"),  # a strided array for a C-contiguous parameter
    ("(x, x.reshape(1, -1)[0:1], 2.0, 3)", "passed for"),  # 2-D for 1-D
    ("(x, y, 2.0, 1.5)", "passed for"),  # a float for the int64 count
])
def test_arguments_a_callee_was_not_compiled_for_fail_at_compile_time(arguments, wrong):
    namespace = {"call": _call_scaled_add, "np": np}
    exec("def bad(address, x, y):\n"  # noqa: S102 - one-line functions of the cases above
         f"    call(address, {arguments})\n", namespace)
    function = njit(namespace["bad"])
    x = np.ones(8)
    with pytest.raises(TypingError, match=wrong):
        function(0, x, np.ones(8))


def test_read_only_mutable_mismatch_fails_at_compile_time():
    @njit
    def bad(address, x, y):
        _call_scaled_add(address, (x, y, 2.0, 3))

    y = np.ones(4)
    y.flags.writeable = False  # the callee writes y
    with pytest.raises(TypingError, match="passed for"):
        bad(0, np.ones(4), y)


_TASKS = [  # (kernel signature, its task function, the task's signature, kernel-only ints)
    (_dense._row_driver_signature, _dense._task_p6, _dense._row_task_signature, 0),
    (_dense._window_driver_signature, _dense._wtask_p6, _dense._window_task_signature, 0),
    (_dense_weight.dense_weight_grad_signature, _dense_weight._weight_task,
     _dense_weight.weight_task_signature, 0),
    (_planar.planar_signature, _planar._planar_conv_tasks, _planar.planar_task_signature, 0),
    # the depthwise kernel also takes its tasks per chunk (its parallel loop's scheduling)
    (_depthwise.depthwise_signature, _depthwise._depthwise_tasks,
     _depthwise.depthwise_task_signature, 1),
    (_planar.planar_weight_grad_signature, _planar._planar_weight_grad_task,
     _planar.planar_weight_task_signature, 0),
    (_pointwise.pointwise_signature, _pointwise._pointwise_task,
     _pointwise.pointwise_task_signature, 0),
    (_kernels.gather_signature, _kernels._gather_conv_task, _kernels.gather_task_signature, 0),
    (_kernels.weight_grad_signature, _kernels._weight_grad_task,
     _kernels.weight_grad_task_signature, 0),
]


@pytest.mark.parametrize("kernel_signature, task, task_signature, kernel_only", _TASKS)
def test_kernels_pass_their_own_arguments_to_their_tasks(kernel_signature, task, task_signature,
                                                         kernel_only):
    """A kernel's parameters are its task's first ones, with the same types (so no argument is
    converted), then ``kernel_only`` int64 scheduling parameters of its own and the task's
    address; the task's last ones are the task (and thread), or the range of tasks (and
    thread)."""
    code = task.py_func.__code__
    names = code.co_varnames[:code.co_argcount]
    for dtype in (np.dtype(np.float32), np.dtype(np.float64)):
        kernel_types, task_types = kernel_signature(dtype), task_signature(dtype)
        shared = len(kernel_types) - 1 - kernel_only
        assert kernel_types[:shared] == task_types[:shared]
        assert all(t == types.int64 for t in kernel_types[shared:])
        assert len(task_types) == len(names)
        assert all(t == types.int64 for t in task_types[shared:])
    assert names[shared:] in (("task",), ("task", "tid"), ("first", "last"),
                              ("first", "last", "tid"))
