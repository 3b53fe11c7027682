"""Cold compile (fresh cache dir) and cached first call of the float32 kernels."""
import os, subprocess, sys, tempfile, time
code = r'''
import time
t0 = time.perf_counter()
import numpy as np, fastconv
t1 = time.perf_counter()
x = np.ones((2, 4, 8, 8), np.float32); w = np.ones((4, 4, 3, 3), np.float32)
y = fastconv.conv2d(x, w, padding=1)
t2 = time.perf_counter()
fastconv.conv2d_backward(x, w, y, padding=1)
fastconv.conv2d(np.ascontiguousarray(x.transpose(0, 2, 3, 1)), w, padding=1, channels_last=True)
fastconv.conv2d_backward(x, w, y, padding=1, needs=("bias",))
t3 = time.perf_counter()
print(f"{t1-t0:.2f} {t2-t1:.2f} {t3-t2:.2f}")
'''
cache = tempfile.mkdtemp()
env = dict(os.environ, NUMBA_CACHE_DIR=cache)
for label in ("cold", "cached"):
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout.split()
    total = time.perf_counter() - t
    print(f"{label}: import {out[0]} s, first conv2d call {out[1]} s, remaining kernels {out[2]} s, process total {total:.2f} s")
