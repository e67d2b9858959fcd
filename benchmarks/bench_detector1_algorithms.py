"""Time the Detector1 algorithms on a synthetic full-frame ramp (not a test).

Usage::

    .venv/bin/python benchmarks/bench_detector1_algorithms.py [--ngroups 10] [--size 2048]
        [--repeat 3]

Prints per-function wall time (median of ``--repeat`` runs on fresh copies), the whole chain, the
process peak RSS (VmHWM, includes inputs, reference arrays and outputs) and the load average.
Data are generated plane by plane so that generation itself does not set the memory peak.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time

import numpy as np

from jwpipe.algorithms import _dq
from jwpipe.algorithms.dark_current import subtract_dark
from jwpipe.algorithms.dq_init import dq_init
from jwpipe.algorithms.gain_scale import gain_scale
from jwpipe.algorithms.group_scale import group_scale
from jwpipe.algorithms.jump import detect_jumps
from jwpipe.algorithms.linearity import correct_linearity
from jwpipe.algorithms.ramp_fit import fit_ramps
from jwpipe.algorithms.refpix import correct_refpix
from jwpipe.algorithms.saturation import flag_saturation
from jwpipe.algorithms.superbias import subtract_superbias

TGROUP = 10.73677


def peak_rss_mib() -> float:
    """Process peak resident set size in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _status_mib(key: str) -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def reset_hwm() -> bool:
    """Reset VmHWM (Linux >= 4.0) so that the next peak is the chain's own; False if unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        return False
    return True


def make_inputs(ngroups: int, size: int, seed: int = 1) -> dict[str, np.ndarray]:
    """Raw ramp (bias + dark + signal + read noise + 1 % jumps) and matching reference arrays."""
    rng = np.random.default_rng(seed)
    shape = (size, size)
    gain = np.full(shape, 2.0, np.float32)
    rn = np.full(shape, 10.0, np.float32)
    rate = np.exp(rng.uniform(np.log(0.3), np.log(300.0), shape)).astype(np.float32)
    bias = rng.normal(12000.0, 50.0, shape).astype(np.float32)
    dark = (np.arange(1, ngroups + 1, dtype=np.float32)[:, None, None] * 0.01 * TGROUP
            * np.ones(shape, np.float32))
    data = np.empty((1, ngroups, size, size), np.float32)
    acc = np.zeros(shape, np.float32)
    cr_mask = rng.random(shape) < 0.01
    cr_group = rng.integers(1, ngroups, shape)
    cr_amp = np.exp(rng.uniform(np.log(10), np.log(5000), shape)).astype(np.float32)
    for g in range(ngroups):
        mean_e = rate * gain * TGROUP
        acc += mean_e + np.sqrt(mean_e) * rng.standard_normal(shape, dtype=np.float32)
        plane = bias + acc / gain + dark[g]
        plane += rng.standard_normal(shape, dtype=np.float32) * np.float32(10.0 / np.sqrt(2))
        plane += np.where(cr_mask & (cr_group <= g), cr_amp, np.float32(0))
        data[0, g] = plane
    coeffs = np.zeros((5, size, size), np.float32)
    coeffs[1] = 1.0
    coeffs[2] = 1e-7
    mask = np.zeros(shape, np.uint32)
    mask[:4] = mask[-4:] = _dq.REFERENCE_PIXEL
    mask[:, :4] = mask[:, -4:] = _dq.REFERENCE_PIXEL
    return {
        "data": data, "gain": gain, "rn": rn, "bias": bias, "dark": dark, "coeffs": coeffs,
        "mask": mask, "sat": np.full(shape, 40000.0, np.float32),
    }


def run_chain(inp: dict[str, np.ndarray], timings: dict[str, list[float]]) -> None:
    """Run every Detector1 function once on a fresh copy of the ramp, recording timings."""
    data = inp["data"].copy()
    gdq = np.zeros(data.shape, np.uint8)
    pdq = np.zeros(data.shape[2:], np.uint32)

    def timed(name, fn, *args, **kwargs):
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        timings.setdefault(name, []).append(time.perf_counter() - t0)
        return out

    t_start = time.perf_counter()
    timed("group_scale", group_scale, data, 1, 1)
    timed("dq_init", dq_init, pdq, gdq, inp["mask"])
    timed("saturation", flag_saturation, data, gdq, pdq, inp["sat"])
    timed("superbias", subtract_superbias, data, pdq, inp["bias"])
    timed("refpix", correct_refpix, data, pdq)
    timed("linearity", correct_linearity, data, gdq, pdq, inp["coeffs"])
    timed("dark_current", subtract_dark, data, pdq, inp["dark"])
    timed("jump", detect_jumps, data, gdq, pdq, inp["gain"], inp["rn"])
    rate, _ints = timed("ramp_fit", fit_ramps, data, gdq, pdq, inp["rn"], inp["gain"],
                        group_time=TGROUP, frame_time=TGROUP)
    timed("gain_scale", gain_scale, rate.data, rate.err, rate.var_poisson, rate.var_rnoise, 1.0)
    timings.setdefault("chain", []).append(time.perf_counter() - t_start)


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ngroups", type=int, default=10)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    t0 = time.perf_counter()
    inp = make_inputs(args.ngroups, args.size)
    print(f"generated 1x{args.ngroups}x{args.size}x{args.size} in {time.perf_counter() - t0:.1f} s;"
          f" RSS peak after generation {peak_rss_mib():.0f} MiB")
    timings: dict[str, list[float]] = {}
    held = _status_mib("VmRSS")
    hwm_reset = reset_hwm()
    for _ in range(args.repeat):
        run_chain(inp, timings)
    if hwm_reset:
        chain_peak = _status_mib("VmHWM")
        print(f"RSS held before the chain (pristine inputs + reference arrays): {held:.0f} MiB;"
              f" peak during the chain {chain_peak:.0f} MiB; above held {chain_peak - held:.0f} MiB"
              f" (the chain's working copy of the ramp 168 MiB, DQ, outputs, temporaries)")
    print(f"load average before/after: {os.getloadavg()}")
    print(f"{'function':<14}{'median s':>10}{'min s':>10}")
    for name, values in timings.items():
        print(f"{name:<14}{statistics.median(values):>10.3f}{min(values):>10.3f}")
    print(f"process peak RSS {peak_rss_mib():.0f} MiB (inputs + references + copies + outputs)")


if __name__ == "__main__":
    main()
