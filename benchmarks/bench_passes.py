"""Wall time of every pass of the case list: forward, grad-input, grad-weight, transposed.

The JIT is compiled in ``setup`` so compile time never lands in ``time_*``; compile time has
its own benchmarks in ``bench_compile.py``.
"""

from .common import (
    CHANNELS_LAST_CASES,
    CONV_CASES,
    EXTRA_CASES,
    FLOAT64_CASES,
    LARGEST_CASES,
    PASSES,
    THREAD_CASES,
    TRANSPOSED_CASES,
    prepare,
    prepare_channels_last,
)


class _Timed:
    timeout = 300.0


class Forward(_Timed):
    """Forward convolution with bias, float32."""

    params = [CONV_CASES]
    param_names = ["case"]

    def setup(self, case):
        self.problem = prepare(case, "forward")

    def time_forward(self, case):
        self.problem.ours()


class GradInput(_Timed):
    """Gradient with respect to the input (``conv{d}d_input``), float32."""

    params = [CONV_CASES]
    param_names = ["case"]

    def setup(self, case):
        self.problem = prepare(case, "grad_input")

    def time_grad_input(self, case):
        self.problem.ours()


class GradWeight(_Timed):
    """Gradient with respect to weight and bias (``conv{d}d_backward``, both), float32."""

    params = [CONV_CASES]
    param_names = ["case"]

    def setup(self, case):
        self.problem = prepare(case, "grad_weight")

    def time_grad_weight_bias(self, case):
        self.problem.ours()


class Transposed(_Timed):
    """Transposed convolution (``conv_transpose{d}d``) and its input and weight gradients."""

    params = [TRANSPOSED_CASES, PASSES]
    param_names = ["case", "pass"]

    def setup(self, case, pass_name):
        self.problem = prepare(case, pass_name)

    def time_transposed(self, case, pass_name):
        self.problem.ours()


class Extra(_Timed):
    """Every pass of the layers beyond the case list (strided depthwise and grouped), float32."""

    params = [list(EXTRA_CASES), PASSES]
    param_names = ["case", "pass_name"]

    def setup(self, case, pass_name):
        self.problem = prepare(case, pass_name)

    def time_extra(self, case, pass_name):
        self.problem.ours()


class ChannelsLast(_Timed):
    """Every pass on channels-last data (``channels_last=True``), float32, on a subset of
    the cases: dense, and depthwise, grouped and stem layers whose kernels need
    channels-first planes."""

    params = [CHANNELS_LAST_CASES, PASSES]
    param_names = ["case", "pass"]

    def setup(self, case, pass_name):
        self.call = prepare_channels_last(case, pass_name)

    def time_channels_last(self, case, pass_name):
        self.call()


class Float64(_Timed):
    """Every pass in float64, on a subset of the cases."""

    params = [FLOAT64_CASES, PASSES]
    param_names = ["case", "pass"]

    def setup(self, case, pass_name):
        self.problem = prepare(case, pass_name, dtype="float64")

    def time_float64(self, case, pass_name):
        self.problem.ours()


class Threads(_Timed):
    """Every pass on 1 and 2 threads (``numba.set_num_threads``), on a subset of the cases."""

    params = [THREAD_CASES, PASSES, [1, 2]]
    param_names = ["case", "pass", "threads"]

    def setup(self, case, pass_name, threads):
        self.problem = prepare(case, pass_name, threads=threads)

    def time_threads(self, case, pass_name, threads):
        self.problem.ours()


class PeakMemory(_Timed):
    """Peak resident memory of the process for the largest cases (inputs included)."""

    params = [LARGEST_CASES, PASSES]
    param_names = ["case", "pass"]

    def setup(self, case, pass_name):
        self.problem = prepare(case, pass_name)

    def peakmem_pass(self, case, pass_name):
        self.problem.ours()
