"""Tests of the cffi binding of the iris_readout C library.

Data are generated here with a seeded numpy generator (Poisson signal, Gaussian
read noise, uint16 quantisation), independent of the project's simulator.
"""

import re
from pathlib import Path

import numpy as np
import pytest

readout = pytest.importorskip("liger_iris_pipeline.readout")
try:
    readout.version()
except ImportError:
    pytest.skip("iris_readout extension not built", allow_module_level=True)

from liger_iris_pipeline.readout import (  # noqa: E402
    IrisReadoutError,
    RampFitResult,
    combine_integrations,
    fit_ramp,
)

DO_NOT_USE, SATURATED, JUMP_DET, NO_LIN_CORR = 1, 2, 4, 1 << 20


def noisy_ramps(rng, rate, times, read_noise=9.0, gain=1.0, bias=1000.0):
    """uint16 ramps (nreads, npix): Poisson counts plus read noise."""
    rate = np.asarray(rate, float)
    dt = np.diff(np.concatenate([[0.0], times]))
    electrons = np.cumsum(rng.poisson(rate * gain * dt[:, None]), axis=0)
    dn = bias + electrons / gain + rng.normal(0.0, read_noise, electrons.shape)
    return np.clip(np.round(dn), 0, 65535).astype(np.uint16)


def linear(times, rate, shape, bias=1000.0, dtype=np.uint16):
    cube = bias + np.asarray(times)[:, None, None] * rate + np.zeros(shape)
    return cube.astype(dtype)


def test_version():
    major, minor, patch = (int(v) for v in readout.version().split("."))
    assert major >= 1 and minor >= 0 and patch >= 0


@pytest.mark.parametrize("dtype", [np.uint16, np.int32, np.float32])
@pytest.mark.parametrize(
    "mode, weighting, fowler_n",
    [("utr", "optimal", 1), ("utr", "unweighted", 1), ("cds", "optimal", 1), ("mcds", "optimal", 3)],
)
@pytest.mark.parametrize("times", [1.5 * np.arange(1, 13), np.array([2.0, 3.0, 5.0, 6.0, 9.0, 10.0, 14.0])])
def test_noiseless_exact(dtype, mode, weighting, fowler_n, times):
    data = linear(times, 40.0, (5, 7), dtype=dtype)
    res = fit_ramp(data, times, mode=mode, weighting=weighting, fowler_n=fowler_n, read_noise=5.0)
    assert isinstance(res, RampFitResult)
    np.testing.assert_allclose(res.rate, 40.0, rtol=1e-5)
    assert (res.dq == 0).all()
    assert (res.n_usable == len(times)).all()
    assert res.rate.dtype == np.float32 and res.dq.dtype == np.uint32


@pytest.mark.parametrize("mode, fowler_n", [("utr", 1), ("cds", 1), ("mcds", 4)])
@pytest.mark.parametrize("weighting", ["optimal", "unweighted"])
def test_noisy_statistics(mode, fowler_n, weighting):
    """(rate - truth) / err has unit standard deviation."""
    rng = np.random.default_rng(1234)
    times = 1.47 * np.arange(1, 21)
    npix = 40000
    truth = rng.uniform(100.0, 500.0, npix)
    data = noisy_ramps(rng, truth, times).reshape(len(times), 200, 200)
    res = fit_ramp(data, times, mode=mode, fowler_n=fowler_n, weighting=weighting, read_noise=9.0, gain=1.0)
    good = res.dq.ravel() == 0
    assert good.mean() > 0.99
    pull = (res.rate.ravel() - truth) / np.sqrt(res.var_poisson + res.var_rnoise).ravel()
    assert abs(np.std(pull[good]) - 1.0) < 0.1, np.std(pull[good])
    assert abs(np.mean(pull[good])) < 0.05


def test_bias_at_high_signal():
    rng = np.random.default_rng(7)
    times = 1.5 * np.arange(1, 31)
    truth = 1000.0
    data = noisy_ramps(rng, np.full(20000, truth), times).reshape(30, 100, 200)
    for mode in ("utr", "cds", "mcds"):
        res = fit_ramp(data, times, mode=mode, fowler_n=5, read_noise=9.0)
        assert abs(res.rate.mean() / truth - 1.0) < 1e-3, (mode, res.rate.mean())


def test_jump_recovery_and_false_positives():
    rng = np.random.default_rng(42)
    times = 1.5 * np.arange(1, 31)
    npix, rate, rn = 20000, 200.0, 9.0
    data = noisy_ramps(rng, np.full(npix, rate), times, read_noise=rn).astype(np.float64)
    # a 10-sigma jump (sigma of a two-point difference) in the first half
    sigma = np.sqrt(2 * rn**2 + rate * 1.5)
    hit = np.zeros(npix, bool)
    hit[: npix // 2] = True
    at = rng.integers(1, 30, npix)
    reads = np.arange(30)[:, None]
    data += np.where(hit & (reads >= at), 10.0 * sigma, 0.0)
    data = np.clip(np.round(data), 0, 65535).astype(np.uint16).reshape(30, 100, 200)
    res = fit_ramp(data, times, read_noise=rn, jump_threshold=5.0)
    flagged = (res.dq.ravel() & JUMP_DET) != 0
    assert flagged[hit].mean() >= 0.99, flagged[hit].mean()
    assert flagged[~hit].mean() < 0.001, flagged[~hit].mean()
    # the rate of a pixel with a jump is still right
    err = np.sqrt(res.var_poisson + res.var_rnoise).ravel()
    pull = (res.rate.ravel() - rate) / err
    assert abs(np.median(pull[hit])) < 0.1
    assert np.std(pull[hit]) < 1.3


def test_saturation_mid_ramp():
    times = np.arange(1.0, 21.0)
    data = linear(times, 1000.0, (2, 3), bias=25000.0)
    res = fit_ramp(data, times, saturation=np.full((2, 3), 36500.0, np.float32), read_noise=4.0)
    np.testing.assert_allclose(res.rate, 1000.0, rtol=1e-6)
    assert (res.dq == SATURATED).all()
    assert (res.n_usable == 11).all()
    res = fit_ramp(data, times, saturation=20000.0)
    assert (res.dq == SATURATED | DO_NOT_USE).all() and np.isnan(res.rate).all()


def test_nonlinearity_and_subarray():
    times = 3.0 * np.arange(1, 11)
    a2, rate = -2e-6, 300.0
    lin = rate * times
    raw = (-1.0 + np.sqrt(1.0 + 4.0 * a2 * lin)) / (2.0 * a2)
    coeffs = np.zeros((3, 8, 9), np.float32)
    coeffs[1], coeffs[2] = 1.0, a2
    coeffs[2, 3, 4] = np.nan
    zero = np.full((8, 9), 1000.0, np.float32)
    data = (1000.0 + raw[:, None, None] + np.zeros((3, 4))).astype(np.float32)
    res = fit_ramp(data, times, nonlin_coeffs=coeffs, zero_level=zero, offset=(2, 3), read_noise=5.0)
    expect_nan = np.zeros((3, 4), bool)
    expect_nan[1, 1] = True  # reference pixel (3, 4)
    np.testing.assert_allclose(res.rate[~expect_nan], rate, rtol=1e-4)
    assert res.dq[1, 1] == NO_LIN_CORR and (res.dq[~expect_nan] == 0).all()
    with pytest.raises(IrisReadoutError, match="does not fit"):
        fit_ramp(data, times, nonlin_coeffs=coeffs, offset=(6, 3))


def test_reference_maps_and_out():
    times = np.arange(1.0, 7.0)
    data = linear(times, 100.0, (3, 4))
    rn = np.arange(12, dtype=np.float32).reshape(3, 4) + 1.0
    mask = np.zeros((3, 4), np.uint32)
    mask[0, 0] = 1 << 10
    out = RampFitResult(
        np.empty((3, 4), np.float32),
        np.empty((3, 4), np.float32),
        np.empty((3, 4), np.float32),
        np.empty((3, 4), np.uint32),
        np.empty((3, 4), np.uint16),
    )
    res = fit_ramp(data, times, weighting="unweighted", read_noise=rn, mask=mask, out=out)
    assert res.rate is out.rate
    n = 6
    np.testing.assert_allclose(res.var_rnoise, 12 * rn**2 / (n**3 - n), rtol=1e-5)
    assert res.dq[0, 0] == 1 << 10 and (res.dq.ravel()[1:] == 0).all()


def test_combine_integrations():
    rate = np.array([[10.0, 1.0], [20.0, 3.0]], np.float32)
    vp = np.array([[1.0, 1.0], [3.0, 1.0]], np.float32)
    vr = np.ones((2, 2), np.float32)
    dq = np.array([[0, DO_NOT_USE], [8, 0]], np.uint32)
    res = combine_integrations(rate, vp, vr, dq)
    np.testing.assert_allclose(res.rate, [(10 / 2 + 20 / 4) / 0.75, 3.0], rtol=1e-6)
    assert list(res.dq) == [8, 0]


def test_errors():
    times = np.arange(1.0, 5.0)
    data = linear(times, 10.0, (2, 2))
    with pytest.raises(TypeError, match="float64"):
        fit_ramp(data.astype(np.float64), times)
    with pytest.raises(TypeError, match="dtype"):
        fit_ramp(data.astype(">u2"), times)
    with pytest.raises(TypeError, match="numpy array"):
        fit_ramp(data.tolist(), times)
    with pytest.raises(ValueError, match="3-D"):
        fit_ramp(data[0], times)
    with pytest.raises(ValueError, match="C-contiguous"):
        fit_ramp(data[:, :, ::-1], times)
    with pytest.raises(ValueError, match="read_times"):
        fit_ramp(data, times[:3])
    with pytest.raises(ValueError, match="mode"):
        fit_ramp(data, times, mode="fowler")
    with pytest.raises(IrisReadoutError, match="read_times\\[2\\]") as info:
        fit_ramp(data, np.array([1.0, 2.0, 2.0, 3.0]))
    assert info.value.code == 4 and isinstance(info.value, ValueError)
    with pytest.raises(IrisReadoutError, match="Fowler"):
        fit_ramp(data, times, mode="mcds", fowler_n=3)
    with pytest.raises(IrisReadoutError, match="two reads"):
        fit_ramp(data[:1], times[:1])
    with pytest.raises(ValueError, match="shape"):
        fit_ramp(data, times, read_noise=np.ones((2, 2)), gain=np.ones((3, 3)))


def test_threads_identical():
    rng = np.random.default_rng(3)
    times = 1.5 * np.arange(1, 16)
    data = noisy_ramps(rng, rng.uniform(0, 2000, 150 * 130), times).reshape(15, 150, 130)
    one = fit_ramp(data, times, read_noise=9.0, saturation=30000.0, nthreads=1)
    two = fit_ramp(data, times, read_noise=9.0, saturation=30000.0, nthreads=2)
    for a, b in zip(one, two, strict=True):
        np.testing.assert_array_equal(a, b)


NO_GAIN_VALUE, UNRELIABLE_ERROR, NO_SAT_CHECK, AD_FLOOR = 1 << 19, 1 << 8, 1 << 21, 1 << 6


def bright_noisy_frame(rng, shape=(40, 50), nreads=10):
    times = 1.5 * np.arange(1, nreads + 1)
    rates = np.full(shape[0] * shape[1], 2000.0)
    data = noisy_ramps(rng, rates, times, read_noise=9.0, gain=2.0).reshape(nreads, *shape)
    return data, times


@pytest.mark.parametrize("bad", [np.nan, 0.0, -1.0, np.inf])
def test_invalid_gain_is_not_fitted(bad):
    """A NaN gain used to give 30 % false jumps and pulls of sd 6.7 on bright pixels: now DO_NOT_USE."""
    data, times = bright_noisy_frame(np.random.default_rng(3))
    gain = np.full(data.shape[1:], 2.0, np.float32)
    gain[::3, ::4] = bad
    res = fit_ramp(data, times, read_noise=9.0, gain=gain)
    bad_pix = ~np.isfinite(gain) | (gain <= 0)
    assert ((res.dq[bad_pix] & (DO_NOT_USE | NO_GAIN_VALUE)) == DO_NOT_USE | NO_GAIN_VALUE).all()
    for arr in (res.rate, res.var_poisson, res.var_rnoise):
        assert np.isnan(arr[bad_pix]).all() and np.isfinite(arr[~bad_pix]).all()
    assert (res.dq[~bad_pix] & (DO_NOT_USE | NO_GAIN_VALUE)).sum() == 0
    # the good pixels keep a correct noise model: few false jumps, unit pulls
    assert ((res.dq[~bad_pix] & JUMP_DET) != 0).mean() < 0.005
    pull = (res.rate[~bad_pix] - 2000.0) / np.sqrt(res.var_poisson[~bad_pix] + res.var_rnoise[~bad_pix])
    assert 0.85 < pull.std() < 1.15


@pytest.mark.parametrize("bad", [np.nan, -1.0, np.inf])
def test_invalid_read_noise_is_not_fitted(bad):
    data, times = bright_noisy_frame(np.random.default_rng(4))
    rn = np.full(data.shape[1:], 9.0, np.float32)
    rn[1::5, 2::3] = bad
    res = fit_ramp(data, times, read_noise=rn, gain=2.0)
    bad_pix = ~(rn >= 0) | np.isinf(rn)
    assert ((res.dq[bad_pix] & (DO_NOT_USE | UNRELIABLE_ERROR)) == DO_NOT_USE | UNRELIABLE_ERROR).all()
    assert np.isnan(res.rate[bad_pix]).all() and np.isnan(res.var_rnoise[bad_pix]).all()
    assert (res.dq[~bad_pix] & DO_NOT_USE).sum() == 0


def test_nan_saturation_and_nonlinearity_are_flagged_and_fitted():
    times = 1.5 * np.arange(1, 9)
    data = linear(times, 40.0, (6, 8))
    sat = np.full((6, 8), 60000.0, np.float32)
    sat[2, 3] = np.nan
    coeffs = np.zeros((3, 6, 8), np.float32)
    coeffs[1] = 1.0
    coeffs[2, 4, 5] = np.nan
    res = fit_ramp(data, times, read_noise=5.0, saturation=sat, nonlin_coeffs=coeffs)
    assert res.dq[2, 3] == NO_SAT_CHECK and res.dq[4, 5] == NO_LIN_CORR
    np.testing.assert_allclose(res.rate, 40.0, rtol=1e-5)


def test_one_nonlinearity_coefficient_is_refused():
    times = 1.5 * np.arange(1, 6)
    data = linear(times, 40.0, (4, 4))
    with pytest.raises(IrisReadoutError, match="ncoeffs=1: a nonlinearity reference needs 2..16"):
        fit_ramp(data, times, nonlin_coeffs=np.zeros((1, 4, 4), np.float32))


def test_reads_at_the_adc_floor():
    times = 1.5 * np.arange(1, 8)
    data = linear(times, 40.0, (3, 4), bias=10.0)
    data[0, 1, 1] = 0  # first read on the floor: fitted from the others
    data[:, 2, 2] = 0  # every read on the floor: nothing to fit
    res = fit_ramp(data, times, read_noise=5.0)
    assert res.dq[1, 1] == AD_FLOOR and res.n_usable[1, 1] == len(times) - 1
    np.testing.assert_allclose(res.rate[1, 1], 40.0, rtol=1e-5)
    assert res.dq[2, 2] == AD_FLOOR | DO_NOT_USE and np.isnan(res.rate[2, 2])
    assert (res.dq[0] == 0).all()


HEADER = Path(__file__).resolve().parent.parent / "iris_readout" / "include" / "iris_readout.h"


def _lib():
    from liger_iris_pipeline.readout._iris_readout_ffi import ffi, lib

    return ffi, lib


def test_dq_bits_agree_with_the_c_header():
    """The DQ table of iris_readout.h and dqflags.pixel: the same names with the same values.

    Both ways: every IRIS_DQ_* of the header (its text and its compiled value)
    is a dqflags.pixel flag of that value, and every dqflags.pixel flag is an
    IRIS_DQ_* of the header; the only extra header name is the JWST alias of
    bit 29.
    """
    from liger_iris_pipeline.dqflags import pixel

    _, lib = _lib()
    text = HEADER.read_text()
    declared = re.findall(r"^#define IRIS_DQ_(\w+)\s", text, flags=re.M)
    assert len(declared) == len(set(declared)) == 34
    aliases = {"MSA_FAILED_OPEN": "OUTSIDE_SUBARRAY"}
    compiled = {name: getattr(lib, "IRIS_DQ_" + name) for name in declared}
    assert set(compiled) == set(pixel) | set(aliases)
    for name, value in compiled.items():
        assert value == pixel[aliases.get(name, name)], name
    # the header's own text: 1u << bit, or 0u for GOOD
    bits = dict(re.findall(r"#define IRIS_DQ_(\w+)\s+\(1u << (\d+)\)", text))
    assert len(bits) == 32
    for name, bit in bits.items():
        assert pixel[name] == 1 << int(bit), name
    assert re.search(r"#define IRIS_DQ_GOOD\s+0u\b", text) and pixel["GOOD"] == 0


def _declarations(text):
    """Functions, structs, enums, enumerators (with values) and #define constants of C text."""
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    functions = set(re.findall(r"\b(iris_\w+)\s*\([^;{]*\)\s*;", text))
    structs = set(re.findall(r"\bstruct\s+(iris_\w+)", text))
    enums = set(re.findall(r"\benum\s+(iris_\w+)", text))
    enumerators = {}
    for body in re.findall(r"\benum\s+iris_\w+\s*\{(.*?)\}", text, flags=re.S):
        enumerators.update((n, int(v)) for n, v in re.findall(r"(IRIS_\w+)\s*=\s*(\d+)", body))
    defines = set(re.findall(r"^#define[ \t]+(IRIS_\w+)[ \t]+\S", text, flags=re.M))
    return functions, structs, enums, enumerators, defines


def test_cdef_is_derived_from_the_header():
    """The cffi cdef comes from iris_readout.h: every declaration of the header is in the binding."""
    from liger_iris_pipeline.readout import _build_ffi

    text = HEADER.read_text()
    assert _build_ffi.CDEF == _build_ffi.cdef_from_header(text)
    functions, structs, enums, enumerators, defines = _declarations(text)
    cdef_functions, cdef_structs, cdef_enums, cdef_enumerators, _ = _declarations(_build_ffi.CDEF)
    assert functions == cdef_functions and {"iris_workspace_nthreads", "iris_readout_fit_once"} <= functions
    assert structs == cdef_structs and enums == cdef_enums and enumerators == cdef_enumerators
    assert set(re.findall(r"^#define (IRIS_\w+) \.\.\.$", _build_ffi.CDEF, flags=re.M)) == defines
    # the compiled module has them all, with the header's values
    ffi, lib = _lib()
    for name in functions:
        assert callable(getattr(lib, name)), name
    for name, value in enumerators.items():
        assert getattr(lib, name) == value, name
    for name in structs - {"iris_workspace"}:  # the workspace is opaque
        assert ffi.sizeof("struct " + name) > 0, name
    version = ".".join(str(getattr(lib, f"IRIS_READOUT_VERSION_{p}")) for p in ("MAJOR", "MINOR", "PATCH"))
    assert version == readout.version()


def test_cdef_builder_is_strict():
    """Directives the builder does not understand fail the build instead of being dropped silently."""
    from liger_iris_pipeline.readout._build_ffi import cdef_from_header

    header = (
        '#ifndef G\n#define G\n#include <stddef.h>\n#ifdef __cplusplus\nextern "C" {\n#endif\n'
        "#define IRIS_A (1u << 3) /* c */\nint iris_f(int x); // c\n#ifdef __cplusplus\n}\n#endif\n#endif\n"
    )
    assert cdef_from_header(header) == "#define IRIS_A ...\nint iris_f(int x);\n"
    for bad in ("#if FOO\nint a;\n#endif\n", "#define IRIS_F(x) x\n", "#pragma once\n", "#ifdef __cplusplus\n"):
        with pytest.raises(ValueError):
            cdef_from_header(bad)


def test_ramp_fitter_reuses_one_workspace(monkeypatch):
    """A RampFitter creates its C workspace once and gives fit_ramp's results on every reuse."""
    from liger_iris_pipeline.readout import RampFitter, binding

    created = []
    real_create = binding._workspace_create

    def counting_create(*args):
        ws = real_create(*args)
        created.append(ws)
        return ws

    monkeypatch.setattr(binding, "_workspace_create", counting_create)
    rng = np.random.default_rng(11)
    times = 1.5 * np.arange(1, 9)
    shape = (8, 30, 40)
    ramps = [noisy_ramps(rng, rng.uniform(0, 1500, 30 * 40), times).reshape(shape) for _ in range(3)]
    for ramp in ramps:
        ramp[3:, 5, 7] += 500  # a jump: the scalar path too
    rn = np.full(shape[1:], 9.0, np.float32)
    config = dict(read_noise=rn, gain=2.0, saturation=15000.0, nthreads=2)
    expected = [fit_ramp(ramp, times, **config) for ramp in ramps]
    assert len(created) == 3  # fit_ramp: one fitter, hence one workspace, per call
    assert all(exp.dq[5, 7] & JUMP_DET for exp in expected)
    created.clear()
    out = RampFitResult(*(np.empty(shape[1:], d) for d in (np.float32,) * 3 + (np.uint32, np.uint16)))
    with RampFitter(shape, **config) as fitter:
        assert fitter.nthreads >= 1 and not fitter.closed
        for _ in range(2):  # the integrations, then the same frames again
            for ramp, exp in zip(ramps, expected, strict=True):
                for res in (fitter.fit(ramp, times), fitter.fit(ramp, times, out=out)):
                    for a, b in zip(res, exp, strict=True):
                        np.testing.assert_array_equal(a, b)
    assert len(created) == 1
    assert fitter.closed
    with pytest.raises(ValueError, match="closed"):
        fitter.fit(ramps[0], times)
    fitter.close()  # idempotent


def test_ramp_fitter_workspace_limits_and_finalizer():
    """Fewer reads and any row length reuse the workspace, more reads are refused; garbage collection frees it."""
    import gc
    import weakref

    from liger_iris_pipeline.readout import RampFitter

    times = np.arange(1.0, 11.0)
    data = linear(times, 10.0, (6, 7))
    fitter = RampFitter(data.shape)
    small = np.ascontiguousarray(data[:4, :, :5])
    np.testing.assert_array_equal(fitter.fit(small, times[:4]).rate, fit_ramp(small, times[:4]).rate)
    wide = linear(times, 10.0, (6, 40))  # rows of any length: more blocks per row
    np.testing.assert_array_equal(fitter.fit(wide, times).rate, fit_ramp(wide, times).rate)
    longer = np.arange(1.0, 13.0)
    with pytest.raises(IrisReadoutError) as info:
        fitter.fit(linear(longer, 10.0, (6, 7)), longer)
    assert info.value.code == _lib()[1].IRIS_ERR_WORKSPACE
    del info  # its traceback holds the fitter
    finalizer = fitter._finalizer
    ref = weakref.ref(fitter)
    del fitter
    gc.collect()
    assert ref() is None and not finalizer.alive
