"""Tracked numbers: GFLOP/s, fraction of the measured machine peak, speedups over peers.

Speedups are measured in one process with the calls interleaved (ours, peer, ours, peer,
...; best of several) so the ratio holds on a noisy machine. A peer that is not installed
makes its benchmark skip (``NotImplementedError`` in ``setup``), never fail.
"""

from .common import ALL_CASES, CASES, MIN_SAMPLE, PASSES, ROUNDS, bench, prepare

SCIPY_CASES = [name for name, case in CASES.items() if bench.peer_applies("scipy", case)]


def _gflops(problem):
    best, _ = bench.interleaved_best({"fastconv": problem.ours}, rounds=ROUNDS,
                                     min_sample=MIN_SAMPLE, warm=False)
    return problem.flops / best["fastconv"] / 1e9


def _speedup(problem, peer):
    best, _ = bench.interleaved_best({"fastconv": problem.ours, peer: problem.peers[peer]},
                                     rounds=ROUNDS, min_sample=MIN_SAMPLE, warm=False)
    return best[peer] / best["fastconv"]


class MachinePeak:
    """This machine's FMA peak (the probe behind every peak fraction)."""

    params = [[1, 2], ["float32", "float64"]]
    param_names = ["threads", "dtype"]
    timeout = 120.0

    def setup(self, threads, dtype):
        try:
            bench.set_threads(threads)
        except ValueError as error:
            raise NotImplementedError(str(error)) from error

    def track_fma_peak(self, threads, dtype):
        return bench.machine_peak(threads, dtype)

    track_fma_peak.unit = "GFLOP/s"


class Throughput:
    """fastconv GFLOP/s for every case and pass (float32, all threads), and peak fraction."""

    params = [ALL_CASES, PASSES]
    param_names = ["case", "pass"]
    timeout = 300.0

    def setup_cache(self):
        return {"peak": bench.machine_peak()}

    def setup(self, cache, case, pass_name):
        self.problem = prepare(case, pass_name)

    def track_gflops(self, cache, case, pass_name):
        return _gflops(self.problem)

    track_gflops.unit = "GFLOP/s"

    def track_peak_fraction(self, cache, case, pass_name):
        return _gflops(self.problem) / cache["peak"]

    track_peak_fraction.unit = "fraction of FMA peak"


class SpeedupTorch:
    """Speedup over PyTorch (``torch.nn.functional``, ``aten.convolution_backward``)."""

    params = [ALL_CASES, PASSES]
    param_names = ["case", "pass"]
    timeout = 300.0

    def setup(self, case, pass_name):
        self.problem = prepare(case, pass_name, peers=("torch",))

    def track_speedup_vs_torch(self, case, pass_name):
        return _speedup(self.problem, "torch")

    track_speedup_vs_torch.unit = "x (torch time / fastconv time)"


class SpeedupSciPy:
    """Speedup over SciPy where it computes the same layer (single-channel image)."""

    params = [SCIPY_CASES, PASSES]
    param_names = ["case", "pass"]
    timeout = 300.0

    def setup(self, case, pass_name):
        self.problem = prepare(case, pass_name, peers=("scipy",))

    def track_speedup_vs_scipy(self, case, pass_name):
        return _speedup(self.problem, "scipy")

    track_speedup_vs_scipy.unit = "x (scipy time / fastconv time)"
