import time, numpy as np, fastconv, sys
def best(f, n=5):
    ts=[]
    for _ in range(n):
        t=time.perf_counter(); f(); ts.append(time.perf_counter()-t)
    return min(ts)
rng=np.random.default_rng(0)
x=rng.standard_normal((8,64,56,56),dtype=np.float32); w=rng.standard_normal((64,64,3,3),dtype=np.float32)
cl = len(sys.argv)>1
if cl: x=np.ascontiguousarray(np.moveaxis(x,1,-1))
fl=2*8*56*56*64*64*9
y=fastconv.conv2d(x,w,padding=1,channels_last=cl)
g=np.ones_like(y)
fastconv.conv2d_backward(x,w,g,padding=1,channels_last=cl)
tf=best(lambda: fastconv.conv2d(x,w,padding=1,channels_last=cl))
ti=best(lambda: fastconv.conv2d_input(x.shape,w,g,padding=1,channels_last=cl))
tw=best(lambda: fastconv.conv2d_weight(x,w.shape,g,padding=1,channels_last=cl))
tb=best(lambda: fastconv.conv2d_backward(x,w,g,padding=1,channels_last=cl),3)
print(f"channels_last={cl} fwd {fl/tf/1e9:.1f} GF/s  grad_input {fl/ti/1e9:.1f}  grad_weight {fl/tw/1e9:.1f}  backward(all) {2*fl/tb/1e9:.1f}")
