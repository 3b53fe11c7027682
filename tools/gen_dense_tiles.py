"""Generate the hand-unrolled tiles and drivers of ``fastconv/_dense.py``.

Usage: ``python tools/gen_dense_tiles.py > block.py``; the output replaces the block between
the markers ``# --- generated tiles and drivers: begin`` and ``... end`` in ``_dense.py``.
The accumulators of a register tile must be distinct local variables to live in registers,
so each tile size is written out in full.
"""

TILES = (6, 8)

#: Row-mode tiles that also get a one-vector variant (``_ntileP``, blocks of ``lanes``
#: channels) for layers with at most one vector of output channels: 8 pixels, 8
#: accumulators (with fewer, the FMA latency is not hidden).
NARROW_TILES = (8,)


def _store_lines(P, indent, offset, vectors=2):
    lines = []
    for p in range(P):
        ind = indent
        if p:
            lines.append(f"{indent}if npix > {p}:")
            ind = indent + "    "
        if vectors == 2:
            lines.append(f"{ind}_store_px(op, tb, sp[{5 * P + p}] + {offset}, vadd(a{p}0, b0), "
                         f"vadd(a{p}1, b1), nk, lanes, osk)")
        else:
            lines.append(f"{ind}_store_px1(op, tb, sp[{5 * P + p}] + {offset}, "
                         f"vadd(a{p}0, b0), nk, lanes, osk)")
    return lines


def _fma_lines(P, indent, vectors=2):
    lines = [f"{indent}w0 = vload(wpp, w)"]
    if vectors == 2:
        lines.append(f"{indent}w1 = vload(wpp, w + lanes)")
    for p in range(P):
        lines += [f"{indent}b = vbroadcast_load(x{p}, c)",
                  f"{indent}a{p}0 = vfma(b, w0, a{p}0)"]
        if vectors == 2:
            lines.append(f"{indent}a{p}1 = vfma(b, w1, a{p}1)")
    lines.append(f"{indent}w += kbs")
    return lines


def tile(P, vectors=2):
    """Row-mode tile of ``P`` pixels x one channel block of ``vectors`` vectors."""
    name = f"_tile{P}" if vectors == 2 else f"_ntile{P}"
    what = "channel block `kb`" if vectors == 2 else "one-vector block `kb`"
    L = [
        "@njit(cache=CACHE)",
        f"def {name}(xp, wpp, bp, zp, op, sp, fp, tb, kb, pos, npix, ishape, oshape, kshape, "
        "geom, lay):",
        f'    """Output pixels at ``pos`` (``npix <= {P}`` of them) x {what} (row '
        'mode)."""',
        "    kn = oshape[3]",
        "    k0n, k1n, k2n, kbs = kshape",
        "    d0, d1, d2 = geom[1]",
        "    xs0, xs1, osk = lay[1], lay[2], lay[7]",
        "    lanes = vlanes(xp)",
        f"    interior = _pixel_meta(sp, pos, npix, {P}, ishape, oshape, kshape, geom, lay)",
    ]
    for p in range(P):
        L += [f"    a{p}0 = vzero(xp)"] + ([f"    a{p}1 = vzero(xp)"] if vectors == 2 else [])
    L += [
        "    # the micro-kernel walks one kernel row (K2 taps x C_in, contiguous in the packed",
        "    # weights) per pixel pointer: see _row_sources",
        "    span = k2n * ishape[3]",
        "    direct = interior",
        "    wo = kb * k0n * k1n * span * kbs",
        "    for k0 in range(k0n):",
        "        for k1 in range(k1n):",
        "            rowoff = k0 * d0 * xs0 + k1 * d1 * xs1",
        "            if direct:",
    ]
    L += [f"                x{p} = ptr_of(xp, sp[{p}] + rowoff)" for p in range(P)]
    L += [
        f"                nv = {P}",
        "            else:",
        f"                nv = _row_sources(xp, fp, sp, {P}, interior, k0 * d0, k1 * d1, rowoff,",
        "                                  ishape, k2n, d2)",
    ]
    for p in range(P):
        off = "0" if p == 0 else ("span" if p == 1 else f"{p} * span")
        L.append(f"                x{p} = _src(xp, zp, fp, sp[{4 * P + p}], {off})")
    L += ["            if nv > 0:", "                w = wo",
          "                if d2 == 1 or not direct:  # one contiguous span per pixel",
          "                    for c in range(span):"]
    L += _fma_lines(P, "                        ", vectors)
    L += ["                else:  # dilated taps read in place: K2 runs of C_in",
          "                    for k2 in range(k2n):",
          "                        first = k2 * d2 * ishape[3]",
          "                        for c in range(first, first + ishape[3]):"]
    L += _fma_lines(P, "                            ", vectors)
    L += [
        "            wo += span * kbs",
        "    nk = kn - kb * kbs",
        "    b0 = vload(bp, kb * kbs)",
    ]
    if vectors == 2:
        L.append("    b1 = vload(bp, kb * kbs + lanes)")
    L += _store_lines(P, "    ", "kb * kbs * osk", vectors)
    return "\n".join(L) + "\n"


def wtile(P):
    """Window-mode tile of ``P`` pixels x every channel block."""
    L = [
        "@njit(cache=CACHE)",
        f"def _wtile{P}(xp, wpp, bp, zp, op, sp, fp, tb, pos, npix, ishape, oshape, kshape, geom,",
        "             lay):",
        f'    """Window mode: output pixels at ``pos`` (``npix <= {P}``), all channel blocks."""',
        "    kn = oshape[3]",
        "    k0n, k1n, k2n, kbs = kshape",
        "    osk = lay[7]",
        "    lanes = vlanes(xp)",
        f"    interior = _pixel_meta(sp, pos, npix, {P}, ishape, oshape, kshape, geom, lay)",
        "    win = k0n * k1n * k2n * ishape[3]",
        "    # a full tile of windows inside the input is read in place, one segment of",
        "    # contiguous values per kernel row (k0, k1): K2 x C_in, or C_in per tap k2 with a",
        "    # dilation along the last dimension; any other tile's windows are first gathered",
        "    # (zeros in the padding) into one segment each",
        "    if interior:",
        "        base = xp",
        "        step0 = geom[1][0] * lay[1]",
        "        step1 = geom[1][1] * lay[2]",
        "        step2 = geom[1][2] * ishape[3]",
        "        n0 = k0n",
        "        n1 = k1n",
        "        n2 = 1 if geom[1][2] == 1 else k2n",
        "        seg = win // (n0 * n1 * n2)",
    ]
    L += [f"        o{p} = sp[{p}]" for p in range(P)]
    L += [
        "    else:",
        f"        _gather_windows(xp, fp, sp, {P}, npix, ishape, kshape, geom, lay)",
        "        base = fp",
        "        step0 = 0",
        "        step1 = 0",
        "        step2 = 0",
        "        seg = win",
        "        n0 = 1",
        "        n1 = 1",
        "        n2 = 1",
    ]
    for p in range(P):
        off = "0" if p == 0 else ("win" if p == 1 else f"{p} * win")
        L.append(f"        o{p} = {off}")
    L.append("    for kb in range((kn + kbs - 1) // kbs):")
    for p in range(P):
        L += [f"        a{p}0 = vzero(xp)", f"        a{p}1 = vzero(xp)"]
    L += ["        w = kb * win * kbs",
          "        for k0 in range(n0):",
          "            for k1 in range(n1):",
          "                for k2 in range(n2):",
          "                    off = k0 * step0 + k1 * step1 + k2 * step2"]
    L += [f"                    x{p} = ptr_of(base, o{p} + off)" for p in range(P)]
    L += ["                    for c in range(seg):"]
    L += _fma_lines(P, "                        ")
    L += [
        "        nk = kn - kb * kbs",
        "        b0 = vload(bp, kb * kbs)",
        "        b1 = vload(bp, kb * kbs + lanes)",
    ]
    L += _store_lines(P, "        ", "kb * kbs * osk")
    return "\n".join(L) + "\n"


TASK = """
@njit(cache=CACHE)
def _{w}task_p{P}(x, {wargs}, aux, out, dims, stride, dilation, pad_low, scr, fscr, group, {tail}
    \"\"\"Task `task` of the {mode}-mode drivers of {P}-pixel tiles, on thread `tid`'s scratch.{doc}\"\"\"
    ishape = (dims[1], dims[2], dims[3], dims[4])
    oshape = (dims[8], dims[9], dims[10], dims[11])
    lay = (dims[5], dims[6], dims[7], dims[12], dims[13], dims[14], dims[15], dims[16])
    nblk, kbs = {nblk_kbs}
    kshape = {kshape}
    geom = (stride, dilation, pad_low)
    xp = ptr_of(x, 0)
    bp = ptr_of(aux, 0)
    zp = ptr_of(aux, nblk * kbs)
    op = ptr_of(out, 0)
    fsz = fscr.shape[1]
    sp = ptr_of(scr, tid * scr.shape[1])
    held = {held}
    fp = ptr_of(fscr, tid * fsz + held)
    tb = ptr_of(fscr, tid * fsz + fsz - kbs)
    m = dims[0] * oshape[0] * oshape[1] * oshape[2]
    ntile = (m + {Pm1}) // {P}
{split}    # staged output (see _stage_layout): tiles store channels-last into scratch, the task then
    # writes them into the output channel by channel. `unit` is 1 when staged (dims[17], the
    # stage layout, is 1 or 2): the stage's channel stride, read from the array so that it
    # is no compile-time literal (a literal would compile the tiles a second time)
    unit = min(dims[17], 1)
    cs = {cs}
    slen = group * {P} * cs
    span = {span}
    # scratch past the gathered spans: none when every window lies inside the input (a
    # tiled task's tile, a zero-padded copy), since no tile gathers then (_pixel_meta)
    gather = 0 if _windows_inside(ishape, oshape, kshape, geom) else {P} * span + 16
    room = fsz - held - kbs - gather
    t0 = g * group
    q0 = t0 * {P}
    qa = q0
    pos = _decode(q0, oshape)
    if unit == 1 and room >= slen:
        ppi = oshape[0] * oshape[1] * oshape[2]
        slay = (lay[0], lay[1], lay[2], ppi * cs, oshape[1] * oshape[2] * cs, oshape[2] * cs, cs,
                unit)
        soshape = (oshape[0], oshape[1], oshape[2], nblk * kbs)
        soff = tid * fsz + fsz - kbs - slen
        c_lo = {clo}
        top = ptr_of(fscr, soff - qa * cs - c_lo)
        for _ in range(t0, min(t0 + group, ntile)):
{stagedcall}            q0 += {P}
            pos = _advance(pos, {P}, oshape)
        _flush_stage(op, ptr_of(fscr, soff), qa, min(q0, m), cs, c_lo, oshape, lay, dims[17])
    else:
        for _ in range(t0, min(t0 + group, ntile)):
{directcall}            q0 += {P}
            pos = _advance(pos, {P}, oshape)
"""

DRIVER = """
@njit(parallel=True, cache=CACHE)
def _{w}forward_p{P}(x, {wargs}, aux, out, dims, stride, dilation, pad_low, scr, fscr, group,
                {pad}task_at):
    ntile = (dims[0] * dims[8] * dims[9] * dims[10] + {Pm1}) // {P}
    for task in prange((ntile + group - 1) // group{nkb}):
        # the task function runs at address task_at (compiled once: see _jit.caller); int64
        # task and thread ids: the prange index is unsigned
        _call_{mode}_task(task_at, (x, {wargs}, aux, out, dims, stride, dilation, pad_low,
                                {cpad}scr, fscr, group, np.int64(task),
                                {cpad}np.int64(numba.get_thread_id())))
"""

ROW_DOC = """

    The weights are ``(wsrc, wdesc)`` (see :func:`_block_weights`). Tasks are numbered
    pixel group first when ``wdesc[13] == 1`` (packed weights; a group's input stays in
    L2 across the channel blocks), else channel block first (a thread's consecutive tasks
    share one block of weights, which it packs itself when ``wdesc[13] == 0``).
    """

ROW_SPLIT = """    if wdesc[13] == 1:
        g = task // nblk
        kb = task - g * nblk
    else:
        ngroups = (ntile + group - 1) // group
        kb = task // ngroups
        g = task - kb * ngroups
    wpp = _block_weights(wsrc, wdesc, kb, fscr, tid * fsz,
                         ptr_of(scr, tid * scr.shape[1] + scr.shape[1] - 1))
"""


def _tile_call(name, P, row, out, shape, layout, indent):
    """Lines of one call of tile function ``name`` in a task (to ``out``, ``shape``)."""
    return (f"{indent}{name}(xp, wpp, bp, zp, {out}, sp, fp, tb, {'kb, ' if row else ''}pos, "
            f"min({P}, m - q0), ishape,\n{indent}{' ' * (len(name) + 1)}{shape}, kshape, geom, "
            f"{layout})\n")


def _tile_calls(P, row, out, shape, layout):
    """The tile call of a task's loop: with a one-vector variant, chosen by the block size."""
    indent = " " * 12
    w = "" if row else "w"
    if not (row and P in NARROW_TILES):
        return _tile_call(f"_{w}tile{P}", P, row, out, shape, layout, indent)
    return (f"{indent}if narrow:\n"
            + _tile_call(f"_ntile{P}", P, row, out, shape, layout, indent + "    ")
            + f"{indent}else:\n"
            + _tile_call(f"_tile{P}", P, row, out, shape, layout, indent + "    "))


def drivers(P):
    """The task functions of the row- and window-mode tiles of ``P`` pixels and their
    parallel drivers (a prange body that only calls the task function keeps the parallel
    compile cheap; one driver per mode, so a program compiles only the modes it runs;
    :func:`small_conv` runs the row-mode tasks on the calling thread)."""
    out = []
    for w in ("", "w"):
        row = not w
        wargs = "wsrc, wdesc" if row else "wp"
        out.append(TASK.format(
            w=w, P=P, Pm1=P - 1, mode="row" if row else "window", wargs=wargs,
            tail="task,\n             tid):" if row else "task, tid):", doc=ROW_DOC if row else "",
            nblk_kbs="wdesc[0], wdesc[5]" if row else "wp.shape[0], wp.shape[5]",
            kshape="(wdesc[1], wdesc[2], wdesc[3], wdesc[5])" if row
            else "(wp.shape[1], wp.shape[2], wp.shape[3], wp.shape[5])",
            held="_held_weights(wdesc)" if row else "0",
            kbarg="kb, " if row else "", pad="" if row else " ",
            cs="kbs" if row else "nblk * kbs",
            clo="kb * kbs" if row else "unit - 1",
            span="kshape[2] * ishape[3]" if row
            else "kshape[0] * kshape[1] * kshape[2] * ishape[3]",
            split=(ROW_SPLIT if row else "    g = task\n    wpp = ptr_of(wp, 0)\n")
            + ("    narrow = kbs == vlanes(xp)  # one-vector blocks (_ntile)\n"
               if row and P in NARROW_TILES else ""),
            stagedcall=_tile_calls(P, row, "top", "soshape", "slay"),
            directcall=_tile_calls(P, row, "op", "oshape", "lay")))
        out.append(DRIVER.format(w=w, P=P, Pm1=P - 1, wargs=wargs, mode="row" if row else "window",
                                 nkb=" * wdesc[0]" if row else "", pad="" if row else " ",
                                 cpad="" if row else "   "))
    return "\n".join(out)


def main():
    """Print the generated block."""
    print("# --- generated tiles and drivers: begin (tools/gen_dense_tiles.py; do not edit)\n\n")
    print("\n\n".join([tile(P) for P in TILES] + [tile(P, 1) for P in NARROW_TILES]))
    print()
    print("\n\n".join(wtile(P) for P in TILES))
    print()
    print("\n".join(drivers(P) for P in TILES))
    print("\n# --- generated tiles and drivers: end\n")


if __name__ == "__main__":
    main()
