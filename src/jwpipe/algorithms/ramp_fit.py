"""Ramp fitting: segment-wise optimally weighted least squares (the JWST ``OLS_C`` algorithm).

Each integration's ramp is split into segments of good groups (a JUMP_DET group starts a new
segment; SATURATED and DO_NOT_USE groups are excluded). Every segment is fitted by weighted least
squares with the SNR-dependent power-law weights of Fixsen et al. (2000); segment slopes are
combined with inverse read-noise-variance weights into one slope per integration, and integrations
into one slope per exposure. Variances follow the JWST conventions: Poisson variance from the
median first-difference rate of the pixel, read-noise variance from the segment length.

Speed: ramps whose groups are all good in an integration (the vast majority) take a fast path in
which the slope is a fixed linear combination of the groups, one coefficient table per weighting
power; all other ramps go through a general segment path on the compressed set of those pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from jwpipe.algorithms import _dq
from jwpipe.algorithms._util import map_chunks, nanmedian_axis0, row_chunks
from jwpipe.errors import StepInputError

__all__ = ["RampFitProducts", "fit_ramps", "snr_power"]

#: SNR bin edges and the weighting exponent used in each bin (Fixsen et al. 2000).
_SNR_EDGES = np.array([5.0, 10.0, 20.0, 50.0, 100.0])
_POWERS = np.array([0.0, 0.4, 1.0, 3.0, 6.0, 10.0])
#: Variances at or above this are considered meaningless and set to 0 (as jwst does).
_LARGE_VARIANCE = 1.0e6
_NOT_PERSIST = np.uint8(~_dq.PERSISTENCE & 0xFF)


@dataclass
class RampFitProducts:
    """One rate product (``rate`` 2-D or ``rateints`` 3-D).

    Attributes
    ----------
    data : ndarray of float32
        Slope in DN/s (NaN where unusable).
    dq : ndarray of uint32
        Data quality.
    var_poisson, var_rnoise : ndarray of float32
        Poisson and read-noise variances of the slope, (DN/s)^2.
    err : ndarray of float32
        Total uncertainty, DN/s.
    """

    data: np.ndarray
    dq: np.ndarray
    var_poisson: np.ndarray
    var_rnoise: np.ndarray
    err: np.ndarray

    @classmethod
    def empty(cls, shape: tuple[int, ...]) -> RampFitProducts:
        """Allocate uninitialised arrays of ``shape`` (the fit writes every element).

        Not zero-filled: freed memory of earlier steps can then be reused without the kernel
        handing out (and faulting in) fresh zeroed pages.
        """
        return cls(
            np.empty(shape, np.float32),
            np.empty(shape, np.uint32),
            np.empty(shape, np.float32),
            np.empty(shape, np.float32),
            np.empty(shape, np.float32),
        )


def snr_power(snr: np.ndarray) -> np.ndarray:
    """Exponent of the optimal weights for a segment of signal-to-noise ``snr``.

    Parameters
    ----------
    snr : ndarray
        Segment SNR.

    Returns
    -------
    ndarray
        0 (SNR < 5), 0.4 (< 10), 1 (< 20), 3 (< 50), 6 (< 100) or 10.
    """
    return _POWERS[_snr_bin(snr)]


def _snr_bin(snr: np.ndarray) -> np.ndarray:
    """``np.digitize(snr, _SNR_EDGES)`` for finite ``snr``: the number of edges <= snr."""
    out = (snr >= _SNR_EDGES[0]).astype(np.intp)
    for edge in _SNR_EDGES[1:]:
        out += snr >= edge
    return out


def _weights(n: int, power: float) -> np.ndarray:
    k = np.arange(n, dtype=np.float64)
    mid = (n - 1) / 2.0
    return np.abs((k - mid) / mid) ** power


def _slope_coefficients(n: int) -> np.ndarray:
    """Table (6, n): slope per group = sum_k C[p, k] * y_k for each power bin p."""
    k = np.arange(n, dtype=np.float64)
    table = np.empty((_POWERS.size, n))
    for p, power in enumerate(_POWERS):
        w = _weights(n, power)
        sw, swx, swx2 = w.sum(), (w * k).sum(), (w * k * k).sum()
        table[p] = w * (sw * k - swx) / (sw * swx2 - swx * swx)
    return table


def _snr(delta_dn: np.ndarray, gain: np.ndarray, rn_e: np.ndarray) -> np.ndarray:
    signal = delta_dn * gain
    with np.errstate(invalid="ignore", divide="ignore"):
        denom = np.sqrt(rn_e * rn_e + signal)
        snr = np.where(denom > 0, signal / denom, 0.0)
    snr[~np.isfinite(snr) | (snr < 0)] = 0.0
    return snr


def _check(data: np.ndarray, groupdq: np.ndarray, pixeldq: np.ndarray, readnoise: np.ndarray,
           gain: np.ndarray) -> None:
    if data.ndim != 4:
        raise StepInputError(
            f"ramp_fit: ramp data must be 4-D (nints, ngroups, ny, nx), got {data.shape}"
        )
    if groupdq.shape != data.shape:
        raise StepInputError(f"ramp_fit: groupdq shape {groupdq.shape} != data {data.shape}")
    for name, arr in (("pixeldq", pixeldq), ("readnoise", readnoise), ("gain", gain)):
        if np.shape(arr) != data.shape[2:]:
            raise StepInputError(
                f"ramp_fit: {name} shape {np.shape(arr)} != image shape {data.shape[2:]}"
            )


def fit_ramps(
    data: np.ndarray,
    groupdq: np.ndarray,
    pixeldq: np.ndarray,
    readnoise: np.ndarray,
    gain: np.ndarray,
    *,
    group_time: float,
    frame_time: float,
    nframes: int = 1,
    average_dark_current: np.ndarray | float | None = None,
    suppress_one_group: bool = True,
    chunk_bytes: int | None = None,
    threads: int | None = None,
) -> tuple[RampFitProducts, RampFitProducts]:
    """Fit slopes to every ramp (OLS_C with optimal weighting).

    Parameters
    ----------
    data : ndarray, shape (nints, ngroups, ny, nx)
        Calibrated ramp in DN (not modified).
    groupdq : ndarray of uint8, same shape
        Group DQ. With ``suppress_one_group`` the groups of integrations that have exactly one good
        group get DO_NOT_USE **in place** (as jwst does).
    pixeldq : ndarray of uint32, shape (ny, nx)
        Pixel DQ; the output DQ starts from it. Pixels with DO_NOT_USE get NaN rates.
    readnoise : ndarray, shape (ny, nx)
        CDS read noise in DN.
    gain : ndarray, shape (ny, nx)
        Gain in e-/DN; pixels with gain <= 0 or NaN get DO_NOT_USE|NO_GAIN_VALUE.
    group_time, frame_time : float
        TGROUP and TFRAME in seconds.
    nframes : int
        Frames averaged per group.
    average_dark_current : ndarray or float, optional
        Average dark current added to the median rate for the Poisson variance (e-/s, as jwst).
    suppress_one_group : bool
        Treat integrations with a single good group as having none (jwst default True).
    chunk_bytes : int, optional
        Size of per-chunk temporaries.
    threads : int, optional
        Worker threads over row chunks (default: ``$JWPIPE_THREADS`` or the usable CPUs); the
        result is the same for any count.

    Returns
    -------
    rate : RampFitProducts
        Exposure-level products, arrays of shape (ny, nx).
    rateints : RampFitProducts
        Per-integration products, arrays of shape (nints, ny, nx).

    Raises
    ------
    StepInputError
        If array shapes are inconsistent or times are not positive.
    """
    _check(data, groupdq, pixeldq, readnoise, gain)
    if not (group_time > 0 and frame_time > 0):
        raise StepInputError(
            f"ramp_fit: group_time and frame_time must be > 0, got {group_time}, {frame_time}"
        )
    nints, ngroups, ny, nx = data.shape
    fitter = _Fitter(
        ngroups=ngroups,
        tgroup=float(group_time),
        one_group_time=(nframes + 1) * float(frame_time) / 2.0,
        nframes=nframes,
        suppress_one_group=suppress_one_group and ngroups > 1,
    )
    rate = RampFitProducts.empty((ny, nx))
    ints = RampFitProducts.empty((nints, ny, nx))
    dark = np.broadcast_to(
        np.asarray(0.0 if average_dark_current is None else average_dark_current, np.float64),
        (ny, nx),
    )

    def fit(rows: slice) -> None:
        # float64 per chunk: a full-frame float64 copy of gain and read noise costs 64 MB
        fitter.fit_chunk(
            data[:, :, rows], groupdq[:, :, rows], pixeldq[rows],
            np.asarray(readnoise[rows], dtype=np.float64), np.asarray(gain[rows], dtype=np.float64),
            dark[rows], rate, ints, rows,
        )

    map_chunks(fit, row_chunks(ny, nints * ngroups * nx * 8, chunk_bytes), threads)
    return rate, ints


@dataclass
class _Fitter:
    ngroups: int
    tgroup: float
    one_group_time: float
    nframes: int
    suppress_one_group: bool

    def __post_init__(self) -> None:
        self.coeffs = _slope_coefficients(self.ngroups) if self.ngroups >= 2 else None

    # ---- per chunk -------------------------------------------------------------------------
    def fit_chunk(self, data, gdq, pdq, readnoise, gain, dark, rate, ints, rows) -> None:
        nints, ngroups = data.shape[:2]
        nrow, nx = data.shape[2:]
        npix = nrow * nx
        y_all = data.reshape(nints, ngroups, npix)
        g_all = gdq.reshape(nints, ngroups, npix)
        pdq = pdq.reshape(npix).astype(np.uint32)
        gain = gain.reshape(npix)
        bad_gain = ~(gain > 0)
        pdq[bad_gain] |= np.uint32(_dq.DO_NOT_USE | _dq.NO_GAIN_VALUE)
        gain = np.where(bad_gain, 0.0, gain)
        rn_e = readnoise.reshape(npix) * gain / np.sqrt(2.0 * self.nframes)
        dark = dark.reshape(npix)

        if self.suppress_one_group:
            for i in range(nints):
                good = (g_all[i] & _NOT_PERSIST) == 0
                one = np.count_nonzero(good, axis=0) == 1
                if one.any():
                    g_all[i][:, one] |= np.uint8(_dq.DO_NOT_USE)

        median_rate = np.zeros(npix)
        for i in range(nints):
            median_rate += self._median_rate(y_all[i], g_all[i])
        median_rate /= nints

        num_tot = np.zeros(npix)
        inv_vr_tot = np.zeros(npix)
        inv_vp_tot = np.zeros(npix)
        all_dnu = np.ones(npix, bool)
        all_sat = np.ones(npix, bool)
        any_sat = np.zeros(npix, bool)
        any_jump = np.zeros(npix, bool)
        any_pers = np.zeros(npix, bool)
        for i in range(nints):
            y, g = y_all[i], g_all[i]
            res = _IntAccum.zeros(npix)
            key = g & _NOT_PERSIST
            clean = ~np.any(key, axis=0)
            if ngroups >= 2:
                self._fit_clean(y, clean, gain, rn_e, median_rate, dark, res)
            else:
                clean[:] = False
            rest = np.nonzero(~clean)[0]
            if rest.size:
                self._fit_general(y[:, rest], g[:, rest], gain[rest], rn_e[rest],
                                  median_rate[rest], dark[rest], res, rest)
            flags = np.bitwise_or.reduce(g, axis=0)
            sat0 = (g[0] & _dq.SATURATED) != 0
            sat_all = np.all(g & _dq.SATURATED, axis=0)
            dnu_int = (res.nseg == 0) | sat0
            # partial saturation is flagged but never invalidates the slope
            valid = ((pdq & _dq.INVALID_GROUP) == 0) & ~dnu_int
            dq_i = pdq.copy()
            # group and pixel DQ share these bit values
            dq_i |= (flags & np.uint8(_dq.JUMP_DET | _dq.PERSISTENCE | _dq.SATURATED)).astype(
                np.uint32)
            np.bitwise_or(dq_i, np.uint32(_dq.DO_NOT_USE), out=dq_i, where=dnu_int)
            with np.errstate(divide="ignore", invalid="ignore"):
                var_r = np.where(res.inv_vr > 0, 1.0 / res.inv_vr, 0.0)
                var_p = np.where(res.inv_vp > 0, 1.0 / res.inv_vp, 0.0)
                var_e = np.where(res.inv_ve > 0, 1.0 / res.inv_ve, 0.0)
                slope = res.num * var_r
            var_r[var_r >= _LARGE_VARIANCE] = 0.0
            var_p[var_p >= _LARGE_VARIANCE] = 0.0
            var_e[var_e >= _LARGE_VARIANCE] = 0.0
            slope[~valid] = np.nan
            for arr in (var_r, var_p, var_e):
                arr[~valid] = 0.0
            ints.data[i, rows] = slope.reshape(nrow, nx)
            ints.dq[i, rows] = dq_i.reshape(nrow, nx)
            ints.var_poisson[i, rows] = var_p.reshape(nrow, nx)
            ints.var_rnoise[i, rows] = var_r.reshape(nrow, nx)
            ints.err[i, rows] = np.sqrt(var_e).reshape(nrow, nx)

            num_tot += np.where(valid, res.num, 0.0)
            inv_vr_tot += np.where(valid, res.inv_vr, 0.0)
            with np.errstate(divide="ignore"):
                inv_vp_tot += np.where(valid & (var_p > 0), 1.0 / var_p, 0.0)
            all_dnu &= dnu_int
            all_sat &= sat_all
            any_sat |= (flags & _dq.SATURATED) != 0
            any_jump |= (flags & _dq.JUMP_DET) != 0
            any_pers |= (flags & _dq.PERSISTENCE) != 0

        dq = pdq.copy()
        for mask, flag in ((any_jump, _dq.JUMP_DET), (any_pers, _dq.PERSISTENCE),
                           (all_dnu, _dq.DO_NOT_USE), (all_sat, _dq.SATURATED)):
            np.bitwise_or(dq, np.uint32(flag), out=dq, where=mask)
        invalid = (dq & _dq.INVALID_GROUP) != 0
        with np.errstate(divide="ignore", invalid="ignore"):
            var_r = np.where(inv_vr_tot > 0, 1.0 / inv_vr_tot, 0.0)
            var_p = np.where(inv_vp_tot > 0, 1.0 / inv_vp_tot, 0.0)
        var_r[var_r >= _LARGE_VARIANCE] = 0.0
        var_p[(var_p >= _LARGE_VARIANCE) | (var_p < 0)] = 0.0
        slope = num_tot * var_r
        slope[invalid] = np.nan
        var_r[invalid] = 0.0
        var_p[invalid] = 0.0
        np.bitwise_or(dq, np.uint32(_dq.SATURATED), out=dq, where=any_sat)
        rate.data[rows] = slope.reshape(nrow, nx)
        rate.dq[rows] = dq.reshape(nrow, nx)
        rate.var_poisson[rows] = var_p.reshape(nrow, nx)
        rate.var_rnoise[rows] = var_r.reshape(nrow, nx)
        rate.err[rows] = np.sqrt(var_p + var_r).reshape(nrow, nx)

    # ---- pieces ------------------------------------------------------------------------------
    def _median_rate(self, y: np.ndarray, g: np.ndarray) -> np.ndarray:
        """Median first-difference rate (DN/s) of one integration, 0 where undefined."""
        ngroups = y.shape[0]
        rate0 = None
        if ngroups == 1 or not self.suppress_one_group:
            rate0 = y[0].astype(np.float64) / self.one_group_time
            rate0[~np.isfinite(rate0)] = 0.0
            if ngroups == 1:
                return rate0
        # first differences, NaN where either group is unusable or the later one has a jump
        diffs = np.subtract(y[1:], y[:-1], dtype=np.float32)
        invalid = (g & _dq.INVALID_GROUP) != 0
        drop = invalid[1:] | invalid[:-1]
        drop |= (g[1:] & _dq.JUMP_DET) != 0
        np.copyto(diffs, np.float32(np.nan), where=drop)
        med = nanmedian_axis0(diffs).astype(np.float64) / self.tgroup
        med[~np.isfinite(med)] = 0.0
        if rate0 is not None:
            # "0th-group" ramps: a single good group, and it is group 0
            good = (g & _NOT_PERSIST) == 0
            zeroth = (np.count_nonzero(good, axis=0) == 1) & good[0]
            med[zeroth] = rate0[zeroth]
        return med

    def _variances(self, n: np.ndarray, t: np.ndarray | float, gain, rn_e, median_rate, dark):
        """Poisson and read-noise variances of a segment slope."""
        with np.errstate(divide="ignore", invalid="ignore"):
            signal = np.where(median_rate > 0, median_rate + dark, dark)
            nm1 = np.maximum(n - 1, 1)
            var_p = np.where(gain > 0, signal / (t * gain * nm1), 0.0)
            nn = np.maximum(n, 2).astype(np.float64)
            var_r = np.where(gain > 0, 12.0 * (rn_e / t) ** 2 / ((nn**3 - nn) * gain * gain), 0.0)
        return var_p, var_r

    def _fit_clean(self, y, clean, gain, rn_e, median_rate, dark, res) -> None:
        # Computed on every pixel of the chunk (cheaper than gathering the clean ones) and
        # added where ``clean``; the other pixels are fitted by _fit_general.
        if not clean.any():
            return
        n = self.ngroups
        y0 = y[0].astype(np.float32)
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            if n >= 3:
                snr = _snr((y[n - 1] - y0).astype(np.float64), gain, rn_e)
                pbin = _snr_bin(snr)
                slope = np.zeros(y0.shape, np.float32)
                for k in range(1, n):
                    ck = self.coeffs[:, k].astype(np.float32)[pbin]
                    slope += ck * (y[k] - y0)
                # sum_k C[p,k] = 0, so the y0 offset cancels exactly
                slope = slope.astype(np.float64) / self.tgroup
            else:
                slope = (y[1] - y0).astype(np.float64) / self.tgroup
        var_p, var_r = self._variances(n, self.tgroup, gain, rn_e, median_rate, dark)
        res.add_where(clean, slope, var_p, var_r)

    def _fit_general(self, y, g, gain, rn_e, median_rate, dark, res, where) -> None:
        """Segment-wise fit of ramps with flagged groups (y, g: (ngroups, m))."""
        ngroups, m = y.shape
        yt = np.ascontiguousarray(y.T, dtype=np.float64)  # (m, ngroups)
        key = np.ascontiguousarray(g.T) & _NOT_PERSIST
        good = key == 0
        jump_only = key == _dq.JUMP_DET
        next_good = np.zeros_like(good)
        next_good[:, :-1] = good[:, 1:]
        usable = good | (jump_only & next_good)
        prev_usable = np.zeros_like(usable)
        prev_usable[:, 1:] = usable[:, :-1]
        starts = usable & (~prev_usable | jump_only)
        sat0 = (key[:, 0] & _dq.SATURATED) != 0
        usable[sat0] = False
        starts[sat0] = False
        flat_start = starts.ravel()
        seg_of = np.cumsum(flat_start) - 1
        flat_use = usable.ravel()
        elem = np.nonzero(flat_use)[0]
        if elem.size == 0:
            return
        seg = seg_of[elem]
        nseg = int(seg[-1]) + 1
        seg_len = np.bincount(seg, minlength=nseg)
        start_elem = np.nonzero(flat_start)[0]
        seg_pix, seg_g0 = np.divmod(start_elem, ngroups)
        # prune: drop length-1 segments when the pixel has a longer one, else keep only the first
        longest = np.zeros(m, np.intp)
        np.maximum.at(longest, seg_pix, seg_len)
        first = np.ones(nseg, bool)
        first[1:] = seg_pix[1:] != seg_pix[:-1]
        keep = (seg_len >= 2) | ((longest[seg_pix] < 2) & first)

        # length >= 2 segments: weighted least squares via per-element weights
        n_e = seg_len[seg]
        k_e = elem - start_elem[seg]  # position inside its segment
        y_first = yt.ravel()[start_elem]
        y_last = yt.ravel()[start_elem + seg_len - 1]
        power = snr_power(_snr(y_last - y_first, gain[seg_pix], rn_e[seg_pix]))
        power[seg_len < 3] = 0.0
        multi = (n_e >= 2) & keep[seg]
        mid = np.maximum((n_e - 1) / 2.0, 0.5)
        w = np.abs((k_e - mid) / mid) ** power[seg]
        w[~multi] = 0.0
        yr = yt.ravel()[elem] - y_first[seg]
        x = k_e.astype(np.float64)
        sw = np.bincount(seg, w, nseg)
        swx = np.bincount(seg, w * x, nseg)
        swx2 = np.bincount(seg, w * x * x, nseg)
        swy = np.bincount(seg, w * yr, nseg)
        swxy = np.bincount(seg, w * x * yr, nseg)
        with np.errstate(divide="ignore", invalid="ignore"):
            slope = (sw * swxy - swx * swy) / (sw * swx2 - swx * swx) / self.tgroup
        # length-1 segments: the group value over its timing
        single = seg_len == 1
        if single.any():
            ngood = np.count_nonzero(good, axis=1)[seg_pix]
            zeroth = single & (seg_g0 == 0) & (ngood == 1) & (not self.suppress_one_group)
            t1 = np.where(zeroth, self.one_group_time, self.tgroup)
            slope[single] = y_first[single] / t1[single]
        else:
            t1 = np.full(nseg, self.tgroup)
        t_seg = np.where(single, t1, self.tgroup)
        gp, rp = gain[seg_pix], rn_e[seg_pix]
        var_p, var_r = self._variances(seg_len, t_seg, gp, rp, median_rate[seg_pix], dark[seg_pix])
        kept = np.nonzero(keep)[0]
        res.add(where[seg_pix[kept]], slope[kept], var_p[kept], var_r[kept],
                np.ones(kept.size, np.intp), aggregate=True)


@dataclass
class _IntAccum:
    """Per-pixel sums over the segments of one integration."""

    num: np.ndarray
    inv_vr: np.ndarray
    inv_vp: np.ndarray
    inv_ve: np.ndarray
    nseg: np.ndarray

    @classmethod
    def zeros(cls, npix: int) -> _IntAccum:
        return cls(np.zeros(npix), np.zeros(npix), np.zeros(npix), np.zeros(npix),
                   np.zeros(npix, np.intp))

    def add_where(self, mask, slope, var_p, var_r) -> None:
        """Add one segment to every pixel where ``mask`` (arrays over all pixels)."""
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            inv_vr = np.where(var_r > 0, 1.0 / var_r, 0.0)
            inv_vp = np.where(var_p > 0, 1.0 / var_p, 0.0)
            var_e = var_p + var_r
            inv_ve = np.where(var_e > 0, 1.0 / var_e, 0.0)
            num = np.where(var_r > 0, slope * inv_vr, 0.0)
        for total, value in ((self.num, num), (self.inv_vr, inv_vr), (self.inv_vp, inv_vp),
                             (self.inv_ve, inv_ve)):
            np.add(total, value, out=total, where=mask)
        self.nseg += mask

    def add(self, idx, slope, var_p, var_r, count, aggregate: bool = False) -> None:
        with np.errstate(divide="ignore", invalid="ignore"):
            inv_vr = np.where(var_r > 0, 1.0 / var_r, 0.0)
            inv_vp = np.where(var_p > 0, 1.0 / var_p, 0.0)
            var_e = var_p + var_r
            inv_ve = np.where(var_e > 0, 1.0 / var_e, 0.0)
            num = np.where(var_r > 0, slope * inv_vr, 0.0)
        if aggregate:
            n = self.num.size
            self.num += np.bincount(idx, num, n)
            self.inv_vr += np.bincount(idx, inv_vr, n)
            self.inv_vp += np.bincount(idx, inv_vp, n)
            self.inv_ve += np.bincount(idx, inv_ve, n)
            self.nseg += np.bincount(idx, minlength=n)
        else:
            self.num[idx] += num
            self.inv_vr[idx] += inv_vr
            self.inv_vp[idx] += inv_vp
            self.inv_ve[idx] += inv_ve
            self.nseg[idx] += count
