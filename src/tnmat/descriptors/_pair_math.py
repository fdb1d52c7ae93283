"""Per-pair arithmetic of the compiled density kernels (numba, inlined into them): a branch-free exponential,
the regular solid harmonics R_lm = d^l Y_lm (the recurrence of :mod:`tnmat.so3.spherical_harmonics`) and the
cutoff function.  Split from :mod:`tnmat.descriptors._kernels` so that each file stays short."""

from __future__ import annotations

import math

import numpy as np
from numba import njit, types
from numba.extending import intrinsic

# ----------------------------------------------------------------------------- exp


@intrinsic
def _bits(typingctx, x):
    """The int64 bit pattern of a float64 (an LLVM bitcast, no memory round trip)."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.int64))
    return types.int64(types.float64), codegen


@intrinsic
def _from_bits(typingctx, x):
    """The float64 whose bit pattern is the int64 ``x``."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.float64))
    return types.float64(types.int64), codegen


_LOG2E = 1.4426950408889634
_LN2_HI = 0.6931471803691238  # ln 2 split in two so that k ln 2 is exact for |k| < 2^20 (Cody-Waite)
_LN2_LO = 1.9082149292705877e-10
_SHIFT = 6755399441055744.0  # 1.5 * 2^52: adding it rounds to an integer kept in the low mantissa bits
_INV_FACT = (1.0 / 6227020800.0, 1.0 / 479001600.0, 1.0 / 39916800.0, 1.0 / 3628800.0, 1.0 / 362880.0,
             1.0 / 40320.0, 1.0 / 5040.0, 1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0)


@njit(cache=True, inline="always")
def _exp(x):
    """exp(x) for x <= 700, within 1 ulp of libm (tests): x = k ln 2 + r, |r| <= ln2 / 2, exp(r) by its Taylor
    polynomial of degree 13 (truncation 4e-18), 2^k built in the exponent bits.  Branch-free, so a loop over
    it vectorises (libm exp is a call per element and this numba has no SVML): 16 exponentials per pair took
    39 ns instead of 68 ns (results/descriptors/descriptors_cost_model.json).  Below -708 it returns
    exp(-708) ~ 3e-308 (2^k must stay a normal number)."""
    xq = max(x, -708.0)
    kf = xq * _LOG2E + _SHIFT
    k = kf - _SHIFT
    r = (xq - k * _LN2_HI) - k * _LN2_LO
    p = _INV_FACT[0]
    for c in _INV_FACT[1:]:
        p = p * r + c
    return p * _from_bits((_bits(kf) - 0x4338000000000000 + 1023) << 52)


# ----------------------------------------------------------------------------- solid harmonics


@njit(cache=True, inline="always")
def _solid_harmonics(x, y, z, l_max, kappa, top, ca, cb, cs, ss, pl, out, grad, dcs, dss, plz, plr):
    """Regular solid harmonics R_lm(x, y, z) = d^l Y_lm into ``out`` (flat lm), with the recurrence of
    :mod:`tnmat.so3.spherical_harmonics` (C_m + i S_m = (x + i y)^m, P_l^m(z, r^2) with norms folded in).
    With ``grad`` also dR_lm/d(x, y, z) into ``out`` rows 1..3 (forward-mode derivatives of the recurrence:
    P depends on x, y only through r^2)."""
    r2 = x * x + y * y + z * z
    cs[0] = 1.0
    ss[0] = 0.0
    for m in range(1, l_max + 1):
        cs[m] = x * cs[m - 1] - y * ss[m - 1]
        ss[m] = x * ss[m - 1] + y * cs[m - 1]
        if grad:
            # d(x+iy)^m/dx = m (x+iy)^(m-1), d/dy = i m (x+iy)^(m-1)
            dcs[0, m] = m * cs[m - 1]
            dcs[1, m] = -m * ss[m - 1]
            dss[0, m] = m * ss[m - 1]
            dss[1, m] = m * cs[m - 1]
    for l in range(l_max + 1):
        pl[l, l] = kappa[l]
        if grad:
            plz[l, l] = 0.0
            plr[l, l] = 0.0
        if l >= 1:
            pl[l, l - 1] = top[l] * z
            if grad:
                plz[l, l - 1] = top[l]
                plr[l, l - 1] = 0.0
        for m in range(l - 1):
            a, b = ca[l, m], cb[l, m]
            pl[l, m] = a * z * pl[l - 1, m] - b * r2 * pl[l - 2, m]
            if grad:
                plz[l, m] = a * (pl[l - 1, m] + z * plz[l - 1, m]) - b * r2 * plz[l - 2, m]
                plr[l, m] = a * z * plr[l - 1, m] - b * (pl[l - 2, m] + r2 * plr[l - 2, m])
        base = l * l + l
        out[0, base] = pl[l, 0]
        if grad:
            out[1, base] = 2.0 * x * plr[l, 0]
            out[2, base] = 2.0 * y * plr[l, 0]
            out[3, base] = plz[l, 0] + 2.0 * z * plr[l, 0]
        for m in range(1, l + 1):
            p = pl[l, m]
            out[0, base + m] = p * cs[m]
            out[0, base - m] = p * ss[m]
            if grad:
                pr, pz = plr[l, m], plz[l, m]
                out[1, base + m] = 2.0 * x * pr * cs[m] + p * dcs[0, m]
                out[2, base + m] = 2.0 * y * pr * cs[m] + p * dcs[1, m]
                out[3, base + m] = (pz + 2.0 * z * pr) * cs[m]
                out[1, base - m] = 2.0 * x * pr * ss[m] + p * dss[0, m]
                out[2, base - m] = 2.0 * y * pr * ss[m] + p * dss[1, m]
                out[3, base - m] = (pz + 2.0 * z * pr) * ss[m]


@njit(cache=True, inline="always")
def _solid_harmonics_values(x, y, z, l_max, kappa, top, ca, cb, out):
    """The values of :func:`_solid_harmonics` (bitwise the same numbers, tested) without scratch arrays: m in
    the outer loop, so the l recurrence P_l^m = a z P_{l-1}^m - b r^2 P_{l-2}^m and (x + i y)^m live in
    registers instead of scratch arrays written and read back per pair."""
    r2 = x * x + y * y + z * z
    c, s = 1.0, 0.0  # C_m + i S_m = (x + i y)^m
    for m in range(l_max + 1):
        p2 = kappa[m]  # P_m^m
        base = m * m + m
        out[base + m] = p2 * c
        if m > 0:
            out[base - m] = p2 * s
        if m < l_max:
            p1 = top[m + 1] * z  # P_{m+1}^m
            base = (m + 1) * (m + 1) + m + 1
            out[base + m] = p1 * c
            if m > 0:
                out[base - m] = p1 * s
            for l in range(m + 2, l_max + 1):
                p = ca[l, m] * z * p1 - cb[l, m] * r2 * p2
                base = l * l + l
                out[base + m] = p * c
                if m > 0:
                    out[base - m] = p * s
                p2, p1 = p1, p
        c, s = x * c - y * s, x * s + y * c


@njit(cache=True, inline="always")
def _cutoff(d, r_cut, width, cosine):
    """(f_c(d), f_c'(d)) of :func:`tnmat.descriptors.radial.cutoff_function`."""
    if not cosine:
        return 1.0, 0.0
    x = (d - (r_cut - width)) / width
    if x <= 0.0:
        return 1.0, 0.0
    if x >= 1.0:
        return 0.0, 0.0
    return 0.5 * (1.0 + math.cos(math.pi * x)), -0.5 * math.pi / width * math.sin(math.pi * x)


def sh_tables(l_max: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The recurrence coefficients of :func:`tnmat.so3.spherical_harmonics._tables` as padded arrays."""
    from tnmat.so3.spherical_harmonics import _tables

    tabs = _tables(l_max)
    kappa = np.array([t[0] for t in tabs])
    top = np.array([t[1] for t in tabs])
    ca = np.zeros((l_max + 1, max(l_max, 1)))
    cb = np.zeros_like(ca)
    for l, (_, _, a, b) in enumerate(tabs):
        ca[l, : len(a)] = a
        cb[l, : len(b)] = b
    return kappa, top, ca, cb
