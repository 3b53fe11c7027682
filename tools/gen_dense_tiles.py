"""Generate the hand-unrolled tile functions of fastconv/_dense.py (pasted between markers)."""
import sys


def tile(P):
    L = []
    a = L.append
    a("@njit(cache=True)")
    a(f"def _tile{P}(xp, wpp, bp, zp, op, sp, fp, kb, q0, pos, npix, ishape, oshape, kshape, geom):")
    a(f'    """Output pixels ``[q0, q0 + npix)`` (``npix <= {P}``) x channel block `kb` (row mode)."""')
    a("    i0n, i1n, i2n, cn = ishape")
    a("    kn = oshape[3]")
    a("    k0n, k1n, k2n, kbs = kshape")
    a("    d0, d1, d2 = geom[1]")
    a("    lanes = vlanes(xp)")
    a(f"    interior = _pixel_meta(sp, pos, npix, {P}, ishape, oshape, kshape, geom)")
    for p in range(P):
        a(f"    a{p}0 = vzero(xp)")
        a(f"    a{p}1 = vzero(xp)")
    a("    # the micro-kernel walks one kernel row (K2 taps x C_in, contiguous in the packed weights)")
    a("    # per pixel pointer: see _row_sources")
    a("    span = k2n * cn")
    a("    direct = interior and d2 == 1")
    a("    wo = kb * k0n * k1n * span * kbs")
    a("    for k0 in range(k0n):")
    a("        for k1 in range(k1n):")
    a("            rowoff = (k0 * d0 * i1n + k1 * d1) * i2n * cn")
    a("            if direct:")
    for p in range(P):
        a(f"                x{p} = ptr_of(xp, sp[{p}] + rowoff)")
    a(f"                nv = {P}")
    a("            else:")
    a(f"                nv = _row_sources(xp, fp, sp, {P}, interior, k0 * d0, k1 * d1, rowoff, ishape, k2n, d2)")
    for p in range(P):
        off = "0" if p == 0 else ("span" if p == 1 else f"{p} * span")
        a(f"                x{p} = _src(xp, zp, fp, sp[{4 * P + p}], {off})")
    a("            if nv > 0:")
    a("                w = wo")
    a("                for c in range(span):")
    a("                    w0 = vload(wpp, w)")
    a("                    w1 = vload(wpp, w + lanes)")
    for p in range(P):
        a(f"                    b = vbroadcast_load(x{p}, c)")
        a(f"                    a{p}0 = vfma(b, w0, a{p}0)")
        a(f"                    a{p}1 = vfma(b, w1, a{p}1)")
    a("                    w += kbs")
    a("            wo += span * kbs")
    a("    nk = kn - kb * kbs")
    a("    ob = q0 * kn + kb * kbs")
    a("    b0 = vload(bp, kb * kbs)")
    a("    b1 = vload(bp, kb * kbs + lanes)")
    for p in range(P):
        ind = "    "
        if p:
            a(f"    if npix > {p}:")
            ind = "        "
        off = "ob" if p == 0 else ("ob + kn" if p == 1 else f"ob + {p} * kn")
        a(f"{ind}_store_px(op, {off}, vadd(a{p}0, b0), vadd(a{p}1, b1), nk, lanes)")
    return "\n".join(L) + "\n"

def wtile(P):
    L = []
    a = L.append
    a("@njit(cache=True)")
    a(f"def _wtile{P}(xp, wpp, bp, zp, op, sp, fp, q0, pos, npix, ishape, oshape, kshape, geom):")
    a(f'    """Window mode: output pixels ``[q0, q0 + npix)`` (``npix <= {P}``), all channel blocks."""')
    a("    cn = ishape[3]")
    a("    kn = oshape[3]")
    a("    k0n, k1n, k2n, kbs = kshape")
    a("    lanes = vlanes(xp)")
    a(f"    _pixel_meta(sp, pos, npix, {P}, ishape, oshape, kshape, geom)")
    a("    win = k0n * k1n * k2n * cn")
    a(f"    _gather_windows(xp, fp, sp, {P}, npix, ishape, kshape, geom)")
    for p in range(P):
        off = "0" if p == 0 else ("win" if p == 1 else f"{p} * win")
        a(f"    x{p} = ptr_of(fp, {off})")
    a("    for kb in range((kn + kbs - 1) // kbs):")
    for p in range(P):
        a(f"        a{p}0 = vzero(xp)")
        a(f"        a{p}1 = vzero(xp)")
    a("        w = kb * win * kbs")
    a("        for c in range(win):")
    a("            w0 = vload(wpp, w)")
    a("            w1 = vload(wpp, w + lanes)")
    for p in range(P):
        a(f"            b = vbroadcast_load(x{p}, c)")
        a(f"            a{p}0 = vfma(b, w0, a{p}0)")
        a(f"            a{p}1 = vfma(b, w1, a{p}1)")
    a("            w += kbs")
    a("        nk = kn - kb * kbs")
    a("        ob = q0 * kn + kb * kbs")
    a("        b0 = vload(bp, kb * kbs)")
    a("        b1 = vload(bp, kb * kbs + lanes)")
    for p in range(P):
        ind = "        "
        if p:
            a(f"        if npix > {p}:")
            ind = "            "
        off = "ob" if p == 0 else ("ob + kn" if p == 1 else f"ob + {p} * kn")
        a(f"{ind}_store_px(op, {off}, vadd(a{p}0, b0), vadd(a{p}1, b1), nk, lanes)")
    return "\n".join(L) + "\n"


if "--drivers" not in sys.argv:
    print("\n\n".join(tile(int(p)) for p in sys.argv[1:]))
    print()
    print("\n\n".join(wtile(int(p)) for p in sys.argv[1:]))


DRIVER = '''
@njit({deco}cache=True)
def _{w}{kind}_p{P}(x, wp, aux, out, stride, dilation, pad_low, scr, fscr, group):
    ishape = (x.shape[1], x.shape[2], x.shape[3], x.shape[4])
    oshape = (out.shape[1], out.shape[2], out.shape[3], out.shape[4])
    kshape = (wp.shape[1], wp.shape[2], wp.shape[3], wp.shape[5])
    xp = ptr_of(x, 0)
    wpp = ptr_of(wp, 0)
    bp = ptr_of(aux, 0)
    zp = ptr_of(aux, wp.shape[0] * wp.shape[5])
    op = ptr_of(out, 0)
    scrp = ptr_of(scr, 0)
    fscrp = ptr_of(fscr, 0)
    ssz = scr.shape[1]
    fsz = fscr.shape[1]
    m = out.shape[0] * oshape[0] * oshape[1] * oshape[2]
    ntile = (m + {Pm1}) // {P}
    nkb = {nkb}
    ngrp = (ntile + group - 1) // group
    for task in {rng}(ngrp * nkb):
{split}        tid = {tid}
        sp = ptr_of(scrp, tid * ssz)
        fp = ptr_of(fscrp, tid * fsz)
        geom = (stride, dilation, pad_low)  # built here: parfors reject nested-tuple live-ins
        t0 = g * group
        q0 = t0 * {P}
        pos = _decode(q0, oshape)
        for _ in range(t0, min(t0 + group, ntile)):
            _{w}tile{P}(xp, wpp, bp, zp, op, sp, fp, {kbarg}q0, pos, min({P}, m - q0), ishape, oshape, kshape, geom)
            q0 += {P}
            pos = _advance(pos, {P}, oshape)
'''


def drivers(P):
    out = []
    for w in ("", "w"):
        for par in (True, False):
            out.append(DRIVER.format(
                deco="parallel=True, " if par else "", w=w, kind="forward" if par else "serial", P=P,
                Pm1=P - 1, nkb="wp.shape[0]" if not w else "1", rng="prange" if par else "range",
                tid="numba.get_thread_id()" if par else "0", kbarg="kb, " if not w else "",
                split="        g = task // nkb\n        kb = task - g * nkb\n" if not w else "        g = task\n"))
    return "\n".join(out)


if __name__ == "__main__" and "--drivers" in sys.argv:
    print("\n".join(drivers(P) for P in (6, 8)))
