r"""Where a pass spends its time, down to the instructions of the compiled kernels.

Numba's machine code has no symbols ``perf`` can read, so this tool runs a benchmark pass
in a loop, then dumps the process's anonymous executable memory (the JIT code) to files;
``report`` maps ``perf``'s samples onto it and prints the hottest 256-byte regions and,
for the hottest one, each instruction with its sample count.

Usage (``perf`` and ``objdump`` installed; ``-e cpu-clock`` works without hardware
counters, in a virtual machine too; ``-D`` skips the imports and compiles)::

    perf record -e cpu-clock -F 4000 -D 6000 -o /tmp/perf.data \
        python tools/profile_jit.py run stem7x7s2 grad_input 10
    python tools/profile_jit.py report /tmp/perf.data
    python tools/profile_jit.py report /tmp/perf.data 7f67e0893a00   # another region

``run CASE PASS SECONDS`` (a case of the benchmark list or of ``tools/extra_cases.py``)
writes the code to ``/tmp/fastconv-jit/`` (the report reads it from there). Samples just
after a load or store usually mean the core waited for that access.
"""

from __future__ import annotations

import ctypes
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

OUT = Path("/tmp/fastconv-jit")


def run(case_name: str, pass_name: str, seconds: float) -> None:
    """Call the pass for ``seconds`` seconds, then dump the JIT code of this process."""
    from fastconv import bench

    sys.path.insert(0, str(Path(__file__).parent))
    from extra_cases import EXTRA, depthwise_case  # the layers outside the list too

    extra = {case.name: case for case in EXTRA}
    if case_name.startswith("dw:"):
        extra[case_name] = depthwise_case(case_name)
    case = extra[case_name] if case_name in extra else bench.case_by_name(case_name)
    problem = bench.make_problem(case, pass_name)
    problem.ours()
    start = time.perf_counter()
    calls = 0
    while time.perf_counter() - start < seconds:
        problem.ours()
        calls += 1
    elapsed = (time.perf_counter() - start) / calls
    print(f"{case_name} {pass_name}: {problem.flops / elapsed / 1e9:.1f} GFLOP/s, "
          f"{elapsed * 1e3:.3f} ms a call")
    OUT.mkdir(exist_ok=True)
    _write_symbols(OUT / "symbols.txt")
    regions = []
    for line in Path("/proc/self/maps").read_text().splitlines():
        fields = line.split()
        if "x" in fields[1] and len(fields) < 6:  # executable, no file: JIT code
            low, high = (int(v, 16) for v in fields[0].split("-"))
            regions.append((low, high))
    with open(OUT / "regions.txt", "w") as listing:
        for index, (low, high) in enumerate(regions):
            code = bytes((ctypes.c_char * (high - low)).from_address(low))
            (OUT / f"code{index}.bin").write_bytes(code)
            listing.write(f"{index} {low:x} {high:x}\n")


def _write_symbols(path: Path) -> None:
    """Write the entry address and name of every compiled fastconv function, one a line."""
    from numba.core.registry import CPUDispatcher

    lines = []
    for module_name, module in list(sys.modules.items()):
        if not module_name.startswith("fastconv"):
            continue
        for attr, obj in vars(module).items():
            if not isinstance(obj, CPUDispatcher):
                continue
            for number, cres in enumerate(obj.overloads.values()):
                address = cres.library.get_pointer_to_function(cres.fndesc.llvm_func_name)
                if address:
                    lines.append(f"{address:x} {module_name}.{attr}#{number}")
    path.write_text("\n".join(sorted(set(lines))) + "\n")


def _function_of(address: int, symbols: list[tuple[int, str]]) -> str:
    """The compiled function whose entry is the closest at or below ``address``."""
    name = "?"
    for start, symbol in symbols:
        if start > address:
            break
        name = symbol
    return name


def _samples(perf_data: str) -> Counter:
    """Samples per instruction address in a ``perf.data`` file."""
    script = subprocess.run(["perf", "script", "-i", perf_data, "-F", "ip"],
                            capture_output=True, text=True, check=True).stdout
    return Counter(int(line.strip(), 16) for line in script.splitlines() if line.strip())


def _disassembly(index: int, low: int) -> list[tuple[int, str]]:
    """``(address, instruction)`` of the dumped region ``index`` loaded at ``low``."""
    text = subprocess.run(["objdump", "-D", "-b", "binary", "-mi386:x86-64",
                           f"--adjust-vma={low:#x}", str(OUT / f"code{index}.bin")],
                          capture_output=True, text=True, check=True).stdout
    lines = []
    for line in text.splitlines():
        match = re.match(r"\s*([0-9a-f]+):\s+(?:[0-9a-f]{2} )+\s*(.+)", line)
        if match:
            lines.append((int(match.group(1), 16), match.group(2)))
    return lines


def report(perf_data: str, top: int = 12, region: int | None = None) -> None:
    """Print the hottest regions of the JIT code and the instructions of one.

    The hottest region's, or those of the 256-byte ``region`` (an address from the list).
    """
    samples = _samples(perf_data)
    total = sum(samples.values())
    regions = [tuple(int(v, 16) for v in line.split()[1:])
               for line in (OUT / "regions.txt").read_text().splitlines()]
    jit = Counter({ip: n for ip, n in samples.items()
                   if any(low <= ip < high for low, high in regions)})
    print(f"{total} samples, {sum(jit.values())} in JIT code "
          f"({100 * sum(jit.values()) / max(total, 1):.1f}%)")
    symbols = sorted((int(address, 16), name) for address, name in
                     (line.split() for line in (OUT / "symbols.txt").read_text().splitlines()
                      if line))
    functions = Counter()
    buckets = Counter()
    for ip, n in jit.items():
        buckets[ip // 256 * 256] += n
        functions[_function_of(ip, symbols)] += n
    for name, n in functions.most_common(top):
        print(f"  {100 * n / total:5.1f}% in {name}")
    for start, n in buckets.most_common(top):
        print(f"  {start:x}: {n} samples ({100 * n / total:.1f}%) {_function_of(start, symbols)}")
    if not buckets:
        return
    hottest = buckets.most_common(1)[0][0] if region is None else region // 256 * 256
    index, low = next((i, low) for i, (low, high) in enumerate(regions)
                      if low <= hottest < high)
    print(f"instructions of region {hottest:x} (samples, address, instruction):")
    for address, instruction in _disassembly(index, low):
        if hottest - 64 <= address < hottest + 320:
            print(f"{jit.get(address, 0):7d} {address:x}: {instruction}")


def main(argv: list[str]) -> int:
    """Dispatch ``run`` and ``report``."""
    if len(argv) == 4 and argv[0] == "run":
        run(argv[1], argv[2], float(argv[3]))
        return 0
    if len(argv) in (2, 3) and argv[0] == "report":
        report(argv[1], region=int(argv[2], 16) if len(argv) == 3 else None)
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
