"""Shared fixtures and helpers for the fastconv tests.

Test modules use the plain helpers with ``from conftest import ...``; this module registers itself
as ``conftest`` in ``sys.modules`` so that import does not execute it a second time (pytest runs
with ``--import-mode=importlib``, under which the tests folder is not on ``sys.path`` by default).

Hypothesis profiles: ``dev`` (default, quick), ``ci`` (derandomized, more examples, no example
database) and ``thorough`` (many examples, for a nightly run). Choose one with
``pytest --hypothesis-profile=ci`` or the ``FASTCONV_HYPOTHESIS_PROFILE`` environment variable.
"""

import math
import os
import sys
import warnings
import zlib
from dataclasses import dataclass, replace

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

_TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
if _TESTS_DIR not in sys.path:
    sys.path.insert(0, _TESTS_DIR)  # makes ``import naive`` work under --import-mode=importlib
sys.modules.setdefault("conftest", sys.modules[__name__])

import naive  # noqa: E402

# --------------------------------------------------------------------------- hypothesis profiles

_SLOW_OK = [HealthCheck.too_slow, HealthCheck.data_too_large]
settings.register_profile("dev", deadline=None, max_examples=150, suppress_health_check=_SLOW_OK)
settings.register_profile(
    "ci", deadline=None, max_examples=300, derandomize=True, database=None, print_blob=True,
    suppress_health_check=_SLOW_OK,
)
settings.register_profile("thorough", deadline=None, max_examples=1000,
                          suppress_health_check=_SLOW_OK)
settings.load_profile(os.environ.get("FASTCONV_HYPOTHESIS_PROFILE", "dev"))

# When a property test fails, hypothesis imports libcst (if installed) to suggest a patch; that
# import raises a DeprecationWarning here, which ``filterwarnings = error`` turns into an
# INTERNALERROR hiding the real failure. Import it once now, quietly.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import hypothesis.extra._patching  # noqa: F401
    except ImportError:
        pass

# --------------------------------------------------------------------------- tolerances

#: Safety factor on the rounding-error model below; the same for every test, never tuned per test.
TOLERANCE_FACTOR = 4.0


def tolerance(dtype, n_terms):
    """Relative tolerance for a result that is a sum of ``n_terms`` products in ``dtype``.

    Rounding in a sum of ``K`` products of unit-size random numbers grows like
    ``eps * sqrt(K)`` relative to the result (random-walk model), whatever the summation order.
    """
    eps = float(np.finfo(dtype).eps)
    return TOLERANCE_FACTOR * eps * math.sqrt(max(int(n_terms), 1))


def assert_close(actual, expected, n_terms, dtype=None, term_scale=1.0):
    """Assert ``actual`` (engine result) matches ``expected`` (float64 reference).

    Checks the dtype (``dtype``; in any case float32 or float64) and the shape exactly, then the
    values with ``rtol = tolerance(dtype, n_terms)`` and ``atol = rtol * scale``. ``scale`` is the
    typical size of the partial sums the result was accumulated from: the root-mean-square of
    the reference, or ``sqrt(n_terms) * term_scale`` if larger (the size of a sum of ``n_terms``
    random products of root-mean-square ``term_scale``; 1 for the standard-normal data of
    ``make_data``), so results that cancel to near zero are judged against the sums they came
    from. NaN must match NaN and infinities must match exactly.
    """
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    if dtype is not None:
        assert actual.dtype == np.dtype(dtype), (actual.dtype, dtype)
    assert actual.dtype in (np.float32, np.float64), actual.dtype
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    rtol = tolerance(actual.dtype, n_terms)
    finite = expected[np.isfinite(expected)]
    rms = float(np.sqrt(np.mean(finite**2))) if finite.size else 0.0
    scale = max(rms, math.sqrt(max(int(n_terms), 1)) * term_scale)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale, equal_nan=True)


# --------------------------------------------------------------------------- layouts


def to_channels_last(a, batched=True):
    """``(N, C, *S) -> (N, *S, C)`` (or ``(C, *S) -> (*S, C)`` when not batched)."""
    return np.moveaxis(a, 1 if batched else 0, -1)


def to_channels_first(a, batched=True):
    """``(N, *S, C) -> (N, C, *S)`` (or ``(*S, C) -> (C, *S)`` when not batched)."""
    return np.moveaxis(a, -1, 1 if batched else 0)


def layout(a, channels_last, batched=True):
    """Return channels-first array ``a`` in the requested layout, C-contiguous."""
    return np.ascontiguousarray(to_channels_last(a, batched) if channels_last else a)


# --------------------------------------------------------------------------- shared cases


@dataclass(frozen=True)
class Case:
    """One convolution configuration (channels-first shapes; ``size`` is the input's spatial)."""

    name: str
    n: int
    c_in: int
    c_out: int
    size: tuple
    kernel: tuple
    stride: object = 1
    padding: object = 0
    dilation: object = 1
    groups: int = 1
    bias: bool = False
    padding_mode: str = "zeros"

    @property
    def nd(self):
        return len(self.size)

    @property
    def id(self):
        return f"{self.nd}d-{self.name}"

    @property
    def weight_shape(self):
        return (self.c_out, self.c_in // self.groups) + self.kernel

    @property
    def x_shape(self):
        return (self.n, self.c_in) + self.size

    @property
    def pads(self):
        return naive.resolve_pads(self.padding, self.size, self.kernel, self.stride,
                                  self.dilation)

    @property
    def out_size(self):
        stride = naive.as_tuple(self.stride, self.nd)
        dilation = naive.as_tuple(self.dilation, self.nd)
        return tuple(naive.conv_output_size(n, k, s, lo, hi, d) for n, k, s, (lo, hi), d
                     in zip(self.size, self.kernel, stride, self.pads, dilation, strict=True))

    @property
    def out_shape(self):
        return (self.n, self.c_out) + self.out_size

    def kwargs(self, channels_last=False):
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation,
                    groups=self.groups, padding_mode=self.padding_mode,
                    channels_last=channels_last)

    # reduction lengths, for ``tolerance``
    @property
    def forward_terms(self):
        return (self.c_in // self.groups) * math.prod(self.kernel)

    @property
    def input_terms(self):
        return (self.c_out // self.groups) * math.prod(self.kernel)

    @property
    def weight_terms(self):
        return self.n * math.prod(self.out_size)


def _per_dim(value, nd):
    """Truncate a per-dim spec (a 3-tuple, or a 3-tuple of pairs) to ``nd`` dims."""
    return value[:nd] if isinstance(value, tuple) else value


_BASE = {
    1: dict(size=(9,), kernel=(3,)),
    2: dict(size=(7, 6), kernel=(3, 2)),
    3: dict(size=(5, 6, 4), kernel=(3, 2, 2)),
}

# Each variant exercises one parameter (or one interaction); per-dim values are truncated to nd.
_VARIANTS = [
    ("basic", {}),
    ("stride2", dict(stride=2)),
    ("stride_per_dim", dict(stride=(2, 1, 3))),
    ("pad1", dict(padding=1)),
    ("pad_per_dim", dict(padding=(2, 0, 1))),
    ("pad_pairs", dict(padding=((0, 2), (1, 0), (2, 1)))),
    ("valid", dict(padding="valid")),
    ("same", dict(padding="same", kernel=(3, 3, 3))),
    ("same_even_kernel", dict(padding="same", kernel=(4, 2, 2))),
    ("same_stride2", dict(padding="same", stride=2)),
    ("same_stride3_dil2", dict(padding="same", stride=(3, 2, 3), dilation=2, kernel=(2, 3, 2))),
    ("full", dict(padding="full")),
    ("full_dil2", dict(padding="full", dilation=(2, 1, 2))),
    ("dilation2", dict(dilation=2, kernel=(2, 2, 2))),
    ("dilation_per_dim", dict(dilation=(3, 2, 1), kernel=(3, 2, 2), padding=1)),
    ("groups2", dict(groups=2)),
    ("depthwise", dict(c_in=3, c_out=6, groups=3)),
    ("bias", dict(bias=True)),
    ("kernel1", dict(kernel=(1, 1, 1), stride=2)),
    ("kernel_is_input", dict(kernel=(5, 4, 3), size=(5, 4, 3))),
    ("reflect", dict(padding_mode="reflect", padding=((2, 1), (0, 2), (1, 1)))),
    ("replicate", dict(padding_mode="replicate", padding=((3, 0), (1, 2), (0, 3)))),
    ("circular", dict(padding_mode="circular", padding=((1, 3), (2, 0), (1, 2)))),
    ("circular_pad_eq_size", dict(padding_mode="circular", size=(3, 3, 2), kernel=(2, 2, 2),
                                  padding=((3, 2), (1, 3), (2, 2)))),
    ("reflect_same_stride2", dict(padding_mode="reflect", padding="same", stride=2, bias=True)),
    ("replicate_full_dil", dict(padding_mode="replicate", padding="full", dilation=(1, 2, 1))),
    ("everything", dict(stride=(2, 1, 2), padding=((1, 2), (2, 0), (0, 1)), dilation=(1, 2, 1),
                        groups=2, bias=True, padding_mode="reflect")),
]


def _make_cases():
    cases = []
    for nd in (1, 2, 3):
        for name, overrides in _VARIANTS:
            spec = dict(n=2, c_in=4, c_out=6, **_BASE[nd])
            spec.update({key: _per_dim(value, nd) for key, value in overrides.items()})
            case = Case(name=name, **spec)
            assert min(case.out_size) >= 1, case
            cases.append(case)
    return cases


#: The curated forward/backward configurations shared by several test modules.
CASES = _make_cases()


def case_params(cases=None):
    """``pytest.param`` list for ``@pytest.mark.parametrize("case", ...)`` with readable ids."""
    return [pytest.param(c, id=c.id) for c in (CASES if cases is None else cases)]


def with_batch(case, n):
    """The same case with batch size ``n``."""
    return replace(case, n=n)


def make_data(case, rng, dtype=np.float64):
    """Random channels-first ``x``, ``weight``, ``bias`` (or None) and ``grad_output``."""
    x = rng.standard_normal(case.x_shape).astype(dtype)
    weight = rng.standard_normal(case.weight_shape).astype(dtype)
    bias = rng.standard_normal(case.c_out).astype(dtype) if case.bias else None
    grad_output = rng.standard_normal(case.out_shape).astype(dtype)
    return x, weight, bias, grad_output


def api(name, nd):
    """The public fastconv function ``name`` (a template like ``"conv{nd}d_input"``) for ``nd``."""
    import fastconv  # imported lazily: the helpers above must work without the engine

    return getattr(fastconv, name.format(nd=nd))


# --------------------------------------------------------------------------- transposed cases


@dataclass(frozen=True)
class TransposedCase:
    """A transposed-conv configuration: x ``(n, c_in, *size)``, weight ``(c_in, c_out/g, *k)``."""

    name: str
    n: int
    c_in: int
    c_out: int
    size: tuple
    kernel: tuple
    stride: object = 1
    padding: object = 0
    output_padding: object = 0
    dilation: object = 1
    groups: int = 1
    bias: bool = False

    @property
    def nd(self):
        return len(self.size)

    @property
    def id(self):
        return f"{self.nd}d-{self.name}"

    @property
    def weight_shape(self):
        return (self.c_in, self.c_out // self.groups) + self.kernel

    @property
    def x_shape(self):
        return (self.n, self.c_in) + self.size

    @property
    def pads(self):
        return naive.transposed_pads(self.padding, self.size, self.kernel, self.stride,
                                     self.dilation)

    @property
    def out_size(self):
        return naive.conv_output_shape(self.size, self.kernel, self.stride, self.padding,
                                       self.dilation, transposed=True,
                                       output_padding=self.output_padding)

    @property
    def out_shape(self):
        return (self.n, self.c_out) + self.out_size

    def kwargs(self, channels_last=False):
        return dict(stride=self.stride, padding=self.padding,
                    output_padding=self.output_padding, groups=self.groups,
                    dilation=self.dilation, channels_last=channels_last)

    @property
    def terms(self):
        """Most products summed into one output element."""
        return (self.c_in // self.groups) * math.prod(self.kernel)


_TRANSPOSED_BASE = {
    1: dict(size=(6,), kernel=(3,)),
    2: dict(size=(4, 5), kernel=(3, 2)),
    3: dict(size=(3, 4, 3), kernel=(2, 3, 2)),
}

_TRANSPOSED_VARIANTS = [
    ("basic", {}),
    ("stride2", dict(stride=2)),
    ("stride2_op1", dict(stride=2, output_padding=1)),
    ("stride_per_dim_op", dict(stride=(3, 2, 3), output_padding=(2, 1, 0))),
    ("pad1", dict(padding=1, stride=2)),
    ("pad_per_dim", dict(padding=(1, 0, 1))),
    ("pad_pairs", dict(padding=((0, 2), (1, 0), (1, 1)), stride=2, output_padding=1)),
    ("valid", dict(padding="valid", stride=2)),
    ("same", dict(padding="same", stride=2)),
    ("same_op1", dict(padding="same", stride=2, output_padding=1)),
    ("full", dict(padding="full")),
    ("dilation2", dict(dilation=2, stride=2)),
    ("dilation_op", dict(dilation=2, output_padding=1)),  # op < dilation although stride is 1
    ("groups2", dict(groups=2, stride=2)),
    ("depthwise", dict(c_in=3, c_out=6, groups=3)),
    ("bias", dict(bias=True, stride=2, padding=1)),
    ("kernel1", dict(kernel=(1, 1, 1), stride=2)),
    ("everything", dict(stride=(2, 3, 2), padding=((1, 0), (0, 2), (1, 1)),
                        output_padding=(1, 2, 0), dilation=(1, 2, 1), groups=2, bias=True)),
]


def _make_transposed_cases():
    cases = []
    for nd in (1, 2, 3):
        for name, overrides in _TRANSPOSED_VARIANTS:
            spec = dict(n=2, c_in=4, c_out=6, **_TRANSPOSED_BASE[nd])
            spec.update({key: _per_dim(value, nd) for key, value in overrides.items()})
            case = TransposedCase(name=name, **spec)
            assert min(case.out_size) >= 1, case
            cases.append(case)
    return cases


#: The curated transposed-conv configurations shared by several test modules.
TRANSPOSED_CASES = _make_transposed_cases()


def make_transposed_data(case, rng, dtype=np.float64):
    """Random channels-first ``x``, ``weight`` and ``bias`` (or None) for a transposed case."""
    x = rng.standard_normal(case.x_shape).astype(dtype)
    weight = rng.standard_normal(case.weight_shape).astype(dtype)
    bias = rng.standard_normal(case.c_out).astype(dtype) if case.bias else None
    return x, weight, bias


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def rng(request):
    """A ``np.random.Generator`` seeded from the test's id: reproducible, different per test."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))
