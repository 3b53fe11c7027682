"""Command-line entry point: ``fastconv`` / ``python -m fastconv``.

Subcommands
-----------
bench
    Time fastconv beside every installed peer (PyTorch, SciPy, naive NumPy) on the
    benchmark case list and print the side-by-side table (see ``fastconv bench --help``).
demo
    Detect edges in a synthetic photograph-like image with Sobel filters (forward pass),
    take one gradient step on the filters (backward pass), and print what happened.
info
    Print the version, Numba threading layer, thread count and compile-cache location.
compile
    Compile every kernel into the on-disk cache now, in parallel worker processes (see
    :func:`fastconv.precompile`), so that no later call compiles anything.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def _scene(size: int) -> np.ndarray:
    """A grey-level test scene: a lit sphere on a ramp, with a checkerboard and noise."""
    y, x = np.mgrid[0:size, 0:size] / size
    ramp = 0.3 + 0.4 * x
    radius2 = (x - 0.35) ** 2 + (y - 0.4) ** 2
    sphere = np.where(radius2 < 0.06, 0.9 - 2.0 * radius2, 0.0)
    board = ((np.floor(x * 8) + np.floor(y * 8)) % 2) * ((x > 0.6) & (y > 0.55)) * 0.5
    noise = np.random.default_rng(0).normal(0.0, 0.02, (size, size))
    return (np.maximum(ramp, sphere) + board + noise).astype(np.float32)


def _ascii(image: np.ndarray, width: int = 64) -> str:
    """Render a 2-D array as ASCII art (darkest to brightest)."""
    shades = " .:-=+*#%@"
    step = max(1, image.shape[1] // width)
    small = image[:: 2 * step, ::step]
    scaled = (small - small.min()) / max(float(np.ptp(small)), 1e-12)
    return "\n".join("".join(shades[int(v * 9.999)] for v in row) for row in scaled)


def demo(size: int = 512) -> None:
    """Run the edge-detection demo and print what it did."""
    import fastconv

    image = _scene(size)[np.newaxis, np.newaxis]  # (N=1, C=1, H, W)
    sobel_x = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=np.float32)
    weight = np.stack([sobel_x, sobel_x.T])[:, np.newaxis]  # (2 filters, 1 channel, 3, 3)
    start = time.perf_counter()
    fastconv.conv2d(image, weight, padding="same", padding_mode="reflect")
    first = time.perf_counter() - start
    start = time.perf_counter()
    gradients = fastconv.conv2d(image, weight, padding="same", padding_mode="reflect")
    second = time.perf_counter() - start
    magnitude = np.hypot(gradients[0, 0], gradients[0, 1])
    flops = 2 * gradients.size * 9
    print(f"fastconv {fastconv.__version__}: Sobel edges of a {size}x{size} float32 image")
    print(f"  input {image.shape}, weight {weight.shape}, padding='same', padding_mode='reflect'")
    print(f"  output {gradients.shape}; first call {first:.2f} s (includes JIT compile or "
          f"cache load), second call {second * 1e3:.2f} ms ({flops / second / 1e9:.2f} GFLOP/s)")
    print(f"  edge magnitude: mean {magnitude.mean():.3f}, max {magnitude.max():.3f}, "
          f"{(magnitude > 1.0).mean():.1%} of pixels above 1.0")
    target = (magnitude > 1.0).astype(np.float32)
    grad_out = np.stack([target, target])[np.newaxis] * (gradients / np.maximum(magnitude, 1e-6))
    _, grad_w, grad_b = fastconv.conv2d_backward(image, weight, grad_out, padding="same",
                                                 padding_mode="reflect")
    print(f"  backward: grad_weight {grad_w.shape} (norm {np.linalg.norm(grad_w):.3g}), "
          f"grad_bias {grad_b.shape} (values {np.round(grad_b, 3).tolist()})")
    print("edge magnitude (ASCII):")
    print(_ascii(magnitude))


def info() -> None:
    """Print version and runtime configuration."""
    import numba

    import fastconv

    print(f"fastconv {fastconv.__version__}, numba {numba.__version__}, numpy {np.__version__}")
    limit = numba.config.NUMBA_NUM_THREADS
    print(f"threads: {numba.get_num_threads()} (NUMBA_NUM_THREADS={limit})")
    fastconv.conv1d(np.ones((1, 1, 4), np.float32), np.ones((1, 1, 2), np.float32))
    print(f"threading layer: {numba.threading_layer()}")
    print(f"cache dir: {numba.config.CACHE_DIR or '(next to the installed modules)'}")


def compile_kernels(dtypes: list[str], jobs: int | None) -> None:
    """Precompile the kernels and print how long each family took."""
    import numba

    import fastconv

    print(f"compiling the {', '.join(dtypes)} kernels into "
          f"{numba.config.CACHE_DIR or 'the cache next to the installed modules'}", flush=True)
    took = fastconv.precompile(dtypes, jobs)
    total = took.pop("total")
    for name, seconds in took.items():
        print(f"  {name:14s} {seconds:6.1f} s")
    print(f"done in {total:.1f} s")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``fastconv`` command."""
    arguments = sys.argv[1:] if argv is None else list(argv)
    if arguments[:1] == ["bench"]:
        from .bench import main as bench_main

        return bench_main(arguments[1:])
    parser = argparse.ArgumentParser(prog="fastconv", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("bench", help="fastconv beside its peers (see: fastconv bench --help)")
    demo_parser = commands.add_parser("demo", help="edge-detection demo on a synthetic image")
    demo_parser.add_argument("--size", type=int, default=512, help="image side (default 512)")
    commands.add_parser("info", help="version and runtime configuration")
    compile_parser = commands.add_parser(
        "compile", help="compile every kernel into the on-disk cache now, in parallel")
    compile_parser.add_argument("--dtype", default="float32,float64",
                                help="comma-separated dtypes (default: float32,float64)")
    compile_parser.add_argument("--jobs", type=int, default=None,
                                help="worker processes (default: one per core)")
    args = parser.parse_args(arguments)
    if args.command == "info":
        info()
    elif args.command == "compile":
        try:
            compile_kernels(args.dtype.split(","), args.jobs)
        except ValueError as error:
            parser.error(str(error))
    else:
        demo(getattr(args, "size", 512))
    return 0


if __name__ == "__main__":
    sys.exit(main())
