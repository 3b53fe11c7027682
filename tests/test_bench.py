"""The benchmark harness's timing loop (what the asv suite and ``fastconv bench`` rely on)."""

import time

from fastconv import bench


def _counting(seconds: float):
    calls = []

    def function():
        calls.append(time.perf_counter())
        time.sleep(seconds)
        return len(calls)

    return function, calls


def test_interleaved_best_settles_each_sample_with_an_untimed_call():
    first, first_calls = _counting(0.002)
    second, second_calls = _counting(0.002)
    best, results = bench.interleaved_best({"a": first, "b": second}, rounds=3,
                                           min_sample=0.0, pause=0.0, settle=1)
    # two warm-up calls, then per round one untimed and one timed call
    assert len(first_calls) == len(second_calls) == 2 + 3 * 2
    assert results == {"a": 1, "b": 1}
    assert set(best) == {"a", "b"}
    assert all(0.002 <= seconds < 1.0 for seconds in best.values())


def test_interleaved_best_alone_times_back_to_back():
    only, calls = _counting(0.001)
    bench.interleaved_best({"only": only}, rounds=4, min_sample=0.0, settle=1)
    assert len(calls) == 2 + 4
