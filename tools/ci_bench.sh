#!/usr/bin/env bash
# CI step for the asv benchmark suite (benchmarks/):
#   1. `asv check` (the suite imports; every benchmark is well formed);
#   2. the harness on every case of the list, shrunk: fastconv and each installed peer agree;
#   3. `fastconv bench` on one case, with --json;
#   4. a smoke run of every benchmark once, in the current environment (the installed
#      fastconv: no virtualenv builds, nothing saved), with FASTCONV_BENCH_SMOKE=1: cases shrunk
#      (batch 1, spatial sizes / 4) and a subset of them that covers every code path (1-D,
#      2-D dense, depthwise, single-channel/SciPy, 3-D, transposed) as parameters.
# Benchmarks that do not apply (a peer such as PyTorch not installed, one thread only) are
# skipped, not failed. Exits non-zero if any step fails or any benchmark errors or times out.
# About 2-4 minutes on 2 cores (more with a cold Numba cache on a busy machine).
#
# Usage (from anywhere, after `pip install -e .`):  bash tools/ci_bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."

python -c "import asv" 2>/dev/null || python -m pip install 'asv>=0.6'

export FASTCONV_BENCH_SMOKE=1
# Reuse the caller's Numba compile cache if it set one; otherwise a fresh one.
if [ -z "${NUMBA_CACHE_DIR:-}" ]; then
    NUMBA_CACHE_DIR="$(mktemp -d)"
    export NUMBA_CACHE_DIR
fi

# asv needs a machine description; record this machine's defaults without prompting.
asv machine --yes >/dev/null

start=$SECONDS
asv check -E existing:same

# The harness on every case of the list (shrunk), every pass: fastconv and every installed
# peer compute the same result. Then the `fastconv bench` command on one case.
python - <<'PY'
import sys
from pathlib import Path

sys.path.insert(0, str(Path("benchmarks").resolve()))
from common import bench  # this tree's fastconv.bench, as the suite uses it

bad = []
for case in bench.benchmark_cases(smoke=True).values():
    for pass_name in bench.PASSES:
        problem = bench.make_problem(case, pass_name, "float32", bench.PEERS)
        ours = problem.ours()
        for peer, call in problem.peers.items():
            error = bench.relative_error(ours, call())
            if not error <= 1e-3:
                bad.append(f"{case.name} {pass_name}: {peer} differs by {error:.2g}")
print(f"ci_bench: harness check of {len(bench.CASES)} cases:", "; ".join(bad) or "ok")
sys.exit(1 if bad else 0)
PY
json="$(mktemp)"
python -c 'import sys; from fastconv.bench import main; sys.exit(main(sys.argv[1:]))' \
    --quick --cases tiny3x3 --no-progress --json "$json"
python -c 'import json, sys; r = json.load(open(sys.argv[1])); assert len(r["results"]) == 3' "$json"
rm -f "$json"

# --quick: one sample of each benchmark; --dry-run: save nothing. forkserver imports the
# suite once and forks a child per benchmark (spawn re-imports numba and fastconv each time,
# which doubles the run time). asv exits 2 when any benchmark failed or timed out.
log="$(mktemp)"
status=0
asv run -E existing:same --quick --dry-run --show-stderr --launch-method forkserver \
    --durations 5 2>&1 | tee "$log" || status=$?
# Belt and braces: a failed (or timed-out) benchmark's line ends in "failed" in asv's log.
if grep -E '^\[ *[0-9.]+%\] .* failed$' "$log" >&2; then
    echo "ci_bench: the benchmarks above failed" >&2
    [ "$status" -ne 0 ] || status=1
fi
rm -f "$log"
echo "ci_bench: asv check + smoke run finished in $((SECONDS - start)) s (exit status $status)"
exit "$status"
