"""Python interface to the iris_readout C library (cffi, API mode).

The ramp is passed to C without a copy: it must be a C-contiguous
``(nreads, ny, nx)`` array of ``uint16``, ``int32`` or ``float32`` in native
byte order.  Per-pixel references are small and are converted to
``float32`` / ``uint32`` when needed.  The C call releases the GIL.
"""

import threading
import weakref
from collections import namedtuple

import numpy as np

__all__ = [
    "CombinedResult",
    "IrisReadoutError",
    "RampFitResult",
    "RampFitter",
    "combine_integrations",
    "fit_ramp",
    "sum_reads",
    "version",
]

RampFitResult = namedtuple("RampFitResult", "rate var_poisson var_rnoise dq n_usable")
RampFitResult.__doc__ = """Outputs of :func:`fit_ramp`, each shaped ``(ny, nx)``.

Attributes
----------
rate : ndarray of float32
    Count rate in DN/s (NaN where DQ has DO_NOT_USE).
var_poisson, var_rnoise : ndarray of float32
    Poisson and read-noise variances of the rate, (DN/s)**2.
dq : ndarray of uint32
    JWST data-quality bits.
n_usable : ndarray of uint16
    Number of reads used by the fit.
"""

CombinedResult = namedtuple("CombinedResult", "rate var_poisson var_rnoise dq")
CombinedResult.__doc__ = """Outputs of :func:`combine_integrations`, each shaped like one integration."""

# Names of the header's enum constants, looked up in the compiled library
# (lib.IRIS_...): no value of the C interface is typed again here.
_MODES = {"utr": "IRIS_MODE_UTR", "cds": "IRIS_MODE_CDS", "mcds": "IRIS_MODE_MCDS"}
_WEIGHTINGS = {"optimal": "IRIS_WEIGHT_OPTIMAL", "unweighted": "IRIS_WEIGHT_UNWEIGHTED"}
# sample dtype -> (iris_dtype constant, cffi buffer type)
_DTYPES = {
    np.dtype(np.uint16): ("IRIS_DTYPE_UINT16", "uint16_t[]"),
    np.dtype(np.int32): ("IRIS_DTYPE_INT32", "int32_t[]"),
    np.dtype(np.float32): ("IRIS_DTYPE_FLOAT32", "float[]"),
}


class IrisReadoutError(ValueError):
    """An error reported by the iris_readout C library.

    Parameters
    ----------
    code : int
        The ``iris_status`` code.
    message : str
        The library's description of the problem.
    """

    def __init__(self, code, message):
        super().__init__(f"{message} (iris_readout status {code})")
        self.code = code
        self.message = message


def _ffi_lib():
    """Import the compiled extension, explaining how to build it if absent."""
    try:
        from liger_iris_pipeline.readout import _iris_readout_ffi
    except ImportError as exc:
        raise ImportError(
            "the iris_readout extension is not built: install the package "
            "(pip install .) or run 'python liger_iris_pipeline/readout/_build_ffi.py'"
        ) from exc
    return _iris_readout_ffi.ffi, _iris_readout_ffi.lib


def version():
    """Version string of the compiled C library.

    Returns
    -------
    str
        ``"MAJOR.MINOR.PATCH"``.
    """
    ffi, lib = _ffi_lib()
    return ffi.string(lib.iris_readout_version()).decode()


def _raise(ffi, err):
    raise IrisReadoutError(int(err.code), ffi.string(err.message).decode())


def _pixel_ref(name, value, shape, dtype=np.float32):
    """Validate a per-pixel reference map; cheap conversion to ``dtype``."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}")
    if np.dtype(dtype).kind == "u" and arr.dtype.kind not in "iub":
        raise TypeError(f"{name} must be an integer array, got dtype {arr.dtype}")
    if arr.shape != shape:
        raise ValueError(f"{name} has shape {arr.shape}, expected {shape}")
    return np.ascontiguousarray(arr, dtype=dtype)


def _output(out, name, shape, dtype):
    if out is None:
        return np.empty(shape, dtype)
    arr = getattr(out, name)
    if not isinstance(arr, np.ndarray) or arr.dtype != dtype or arr.shape != shape:
        raise TypeError(f"out.{name} must be a {np.dtype(dtype)} array of shape {shape}")
    if not arr.flags.c_contiguous or not arr.flags.writeable:
        raise ValueError(f"out.{name} must be C-contiguous and writeable")
    return arr


def _check_samples(samples):
    """Refuse a ramp the C library cannot read in place (it is never copied)."""
    if not isinstance(samples, np.ndarray):
        raise TypeError(f"samples must be a numpy array, got {type(samples).__name__}")
    if samples.dtype not in _DTYPES:
        raise TypeError(
            f"samples dtype {samples.dtype} is not supported: use uint16, int32 or "
            "float32 in native byte order (the ramp is never copied)"
        )
    if samples.ndim != 3:
        raise ValueError(f"samples must be 3-D (nreads, ny, nx), got shape {samples.shape}")
    if not samples.flags.c_contiguous:
        raise ValueError("samples must be C-contiguous (the ramp is never copied)")


def _workspace_create(ffi, lib, max_nreads, max_nx, nthreads):
    """``iris_workspace_create``, raising IrisReadoutError on failure (one place, so tests can count)."""
    err = ffi.new("iris_error *")
    ws = lib.iris_workspace_create(max_nreads, max_nx, nthreads, err)
    if ws == ffi.NULL:
        _raise(ffi, err)
    return ws


class RampFitter:
    """A reusable ramp fitter: one C workspace and one configuration for an exposure.

    The C library's workspace (``iris_workspace``, per-thread scratch memory
    and tables) is allocated once here, sized for ``shape``, and reused by
    every :meth:`fit`: every integration of an exposure, every frame of a
    sequence.  The processing parameters and the per-pixel reference maps are
    validated and converted once.  The workspace is freed by :meth:`close`, at
    the end of a ``with`` block, or when the fitter is garbage-collected,
    whichever comes first.  One fit runs at a time per fitter (a lock; the C
    call releases the GIL, and a workspace serves one call at a time).

    Parameters
    ----------
    shape : tuple of int
        ``(nreads, ny, nx)`` of the ramps to fit (the workspace is sized for
        it); ramps of other frame sizes and with fewer reads also fit, with
        more reads the C library refuses them (``IRIS_ERR_WORKSPACE``).
    mode, fowler_n, jump_threshold, jump_false_alarm, weighting
        Processing parameters, as for :func:`fit_ramp`.
    nonlin_coeffs, saturation, read_noise, gain, mask, zero_level, offset
        Per-pixel references (arrays) or scalar defaults, as for
        :func:`fit_ramp`; arrays are converted to float32 / uint32 once and
        kept.  An array already of that type and C-contiguous is not copied
        but borrowed: changing it in place changes later fits.
    nthreads : int
        Threads of the workspace; 0 uses all OpenMP threads.

    Examples
    --------
    >>> with RampFitter(samples.shape[1:], read_noise=rn, gain=gain) as fitter:  # doctest: +SKIP
    ...     results = [fitter.fit(ramp, read_times) for ramp in samples]
    """

    def __init__(
        self,
        shape,
        *,
        mode="utr",
        fowler_n=1,
        jump_threshold=5.0,
        jump_false_alarm=None,
        weighting="optimal",
        nonlin_coeffs=None,
        saturation=None,
        read_noise=None,
        gain=None,
        mask=None,
        zero_level=None,
        offset=(0, 0),
        nthreads=0,
    ):
        self._ws = None
        shape = tuple(int(v) for v in shape)
        if len(shape) != 3 or min(shape) < 0:
            raise ValueError(f"shape must be (nreads, ny, nx), got {shape}")
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {sorted(_MODES)}, got {mode!r}")
        if weighting not in _WEIGHTINGS:
            raise ValueError(f"weighting must be one of {sorted(_WEIGHTINGS)}, got {weighting!r}")
        self.shape = shape
        ffi, lib = _ffi_lib()
        self._ffi, self._lib = ffi, lib
        params = ffi.new("iris_readout_params *")
        lib.iris_readout_params_default(params)
        params.mode = getattr(lib, _MODES[mode])
        params.weighting = getattr(lib, _WEIGHTINGS[weighting])
        params.fowler_n = int(fowler_n)
        params.jump_threshold = float(jump_threshold)
        if jump_false_alarm is not None:
            params.jump_false_alarm = float(jump_false_alarm)
        params.nthreads = int(nthreads)
        self._keep = []  # arrays whose buffers the C calls borrow
        self._refs = self._references(params, nonlin_coeffs, saturation, read_noise, gain, mask, zero_level, offset)
        self._params = params
        self._lock = threading.Lock()
        self._ws = _workspace_create(ffi, lib, max(shape[0], 2), max(shape[2], 1), params.nthreads)
        self._finalizer = weakref.finalize(self, lib.iris_workspace_free, self._ws)

    def _references(self, params, nonlin_coeffs, saturation, read_noise, gain, mask, zero_level, offset):
        """Scalars into ``params``; maps into an ``iris_refs`` (or NULL), all of one shape."""
        ffi, lib = self._ffi, self._lib
        maps = {}
        for name, value in (("saturation", saturation), ("read_noise", read_noise), ("gain", gain)):
            if value is None:
                continue
            if np.ndim(value) == 0:
                setattr(params, name, float(value))
            else:
                maps[name] = value
        if zero_level is not None:
            maps["zero_level"] = zero_level
        if mask is not None:
            maps["mask"] = mask
        ref_shape = None
        if nonlin_coeffs is not None:
            coeffs = np.asarray(nonlin_coeffs)
            if coeffs.ndim != 3:
                raise ValueError(f"nonlin_coeffs must be (ncoeffs, ref_ny, ref_nx), got shape {coeffs.shape}")
            ref_shape = coeffs.shape[1:]
        for name, value in maps.items():
            shape = np.shape(value)
            if len(shape) != 2:
                raise ValueError(f"{name} must be 2-D (ref_ny, ref_nx), got shape {shape}")
            if ref_shape is None:
                ref_shape = shape
            elif shape != ref_shape:
                raise ValueError(f"{name} has shape {shape}, other references have {ref_shape}")
        if ref_shape is None:
            if tuple(offset) != (0, 0):
                raise ValueError("offset given without any reference map")
            return ffi.NULL
        refs = ffi.new("iris_refs *")
        lib.iris_refs_default(refs)
        refs.ref_ny, refs.ref_nx = (int(v) for v in ref_shape)
        refs.offset_y, refs.offset_x = (int(v) for v in offset)
        if nonlin_coeffs is not None:
            arr = _pixel_ref("nonlin_coeffs", nonlin_coeffs, coeffs.shape)
            self._keep.append(arr)
            refs.ncoeffs = arr.shape[0]
            refs.nonlin = ffi.from_buffer("float[]", arr)
        for name, value in maps.items():
            dtype, ctype = (np.uint32, "uint32_t[]") if name == "mask" else (np.float32, "float[]")
            arr = _pixel_ref(name, value, ref_shape, dtype)
            self._keep.append(arr)
            setattr(refs, name, ffi.from_buffer(ctype, arr))
        return refs

    @property
    def nthreads(self):
        """Threads the C workspace was created for (``iris_workspace_nthreads``)."""
        self._check_open()
        return int(self._lib.iris_workspace_nthreads(self._ws))

    @property
    def closed(self):
        """True once the workspace is freed."""
        return self._ws is None or not self._finalizer.alive

    def _check_open(self):
        if self.closed:
            raise ValueError("the RampFitter is closed")

    def fit(self, samples, read_times, out=None):
        """Fit the rate of one integration with this fitter's workspace and configuration.

        Parameters
        ----------
        samples : ndarray, shape (nreads, ny, nx)
            The reads, ``uint16``, ``int32`` or ``float32`` (NaN = unusable
            read), C-contiguous, native byte order.  Not copied.
        read_times : array_like of float, shape (nreads,)
            Seconds since the detector reset, strictly increasing.
        out : RampFitResult, optional
            Preallocated outputs (float32, float32, float32, uint32, uint16
            arrays of shape ``(ny, nx)``), filled and returned.

        Returns
        -------
        RampFitResult
            Rate (DN/s), Poisson and read-noise variances, DQ and reads used.

        Raises
        ------
        TypeError, ValueError
            Wrong dtype, shape or layout of the samples, times or outputs; a
            closed fitter.
        IrisReadoutError
            Any problem reported by the C library, e.g. a ramp larger than the
            workspace (``IRIS_ERR_WORKSPACE``).
        """
        _check_samples(samples)
        nreads, ny, nx = samples.shape
        times = np.ascontiguousarray(read_times, dtype=np.float64)
        if times.shape != (nreads,):
            raise ValueError(f"read_times has shape {times.shape}, expected ({nreads},)")
        ffi, lib = self._ffi, self._lib
        shape = (ny, nx)
        rate = _output(out, "rate", shape, np.float32)
        var_poisson = _output(out, "var_poisson", shape, np.float32)
        var_rnoise = _output(out, "var_rnoise", shape, np.float32)
        dq = _output(out, "dq", shape, np.uint32)
        n_usable = _output(out, "n_usable", shape, np.uint16)

        code, ctype = _DTYPES[samples.dtype]
        ramp = ffi.new("iris_ramp *")
        ramp.data = ffi.from_buffer(ctype, samples)
        ramp.dtype = getattr(lib, code)
        ramp.nreads, ramp.ny, ramp.nx = nreads, ny, nx
        ramp.read_times = ffi.from_buffer("double[]", times)
        outputs = ffi.new("iris_outputs *")
        outputs.rate = ffi.from_buffer("float[]", rate)
        outputs.var_poisson = ffi.from_buffer("float[]", var_poisson)
        outputs.var_rnoise = ffi.from_buffer("float[]", var_rnoise)
        outputs.dq = ffi.from_buffer("uint32_t[]", dq)
        outputs.n_usable = ffi.from_buffer("uint16_t[]", n_usable)
        err = ffi.new("iris_error *")
        with self._lock:
            self._check_open()
            status = lib.iris_readout_fit(self._ws, ramp, self._refs, self._params, outputs, err)
        if status != lib.IRIS_OK:
            _raise(ffi, err)
        return RampFitResult(rate, var_poisson, var_rnoise, dq, n_usable)

    def close(self):
        """Free the C workspace now (idempotent); later :meth:`fit` calls raise ValueError."""
        if self._ws is not None:
            with self._lock:
                self._finalizer()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __repr__(self):
        state = "closed" if self.closed else f"nthreads={self.nthreads}"
        return f"<RampFitter shape={self.shape} {state}>"


def fit_ramp(
    samples,
    read_times,
    mode="utr",
    fowler_n=1,
    jump_threshold=5.0,
    jump_false_alarm=None,
    weighting="optimal",
    nonlin_coeffs=None,
    saturation=None,
    read_noise=None,
    gain=None,
    mask=None,
    zero_level=None,
    offset=(0, 0),
    nthreads=0,
    out=None,
):
    """Fit the rate of one integration in a single pass over its reads.

    A convenience around :class:`RampFitter` that creates and frees a fitter
    (and its C workspace) per call; to fit several integrations or frames of
    one exposure, create a :class:`RampFitter` once and call its
    :meth:`~RampFitter.fit`.

    Parameters
    ----------
    samples : ndarray, shape (nreads, ny, nx)
        The reads, ``uint16``, ``int32`` or ``float32`` (NaN = unusable
        read), C-contiguous, native byte order.  Not copied.
    read_times : array_like of float, shape (nreads,)
        Seconds since the detector reset, strictly increasing.
    mode : {'utr', 'cds', 'mcds'}
        Up-the-ramp least squares, last minus first usable read, or
        Fowler-N (mean of the last N minus the mean of the first N reads).
    fowler_n : int
        N for ``mode='mcds'``; ``1 <= N <= nreads // 2``.
    jump_threshold : float
        Largest jump threshold, in sigma of the comparison of a two-point
        difference with the mean of the others; ``<= 0`` disables jump
        detection.  Below it the threshold depends on the number of
        differences (see ``jump_false_alarm``).
    jump_false_alarm : float, optional
        False-alarm probability of the jump test per clean pixel, in
        ``(0, 0.5]``; default (None) the library's, 4e-4.
    weighting : {'optimal', 'unweighted'}
        UTR weighting: Fixsen et al. (2000) signal-to-noise dependent
        power-law weights, or ordinary least squares.
    nonlin_coeffs : array_like, shape (ncoeffs, ref_ny, ref_nx), optional
        Nonlinearity polynomial, ``corrected = z + c0 + c1*s + c2*s**2 + ...``
        of the signal ``s = raw - z`` above the zero level ``z``.
    saturation, read_noise, gain : float or array_like (ref_ny, ref_nx), optional
        Saturation threshold (raw DN), read noise (DN per read), gain
        (e-/DN); a scalar applies to every pixel.  Defaults: 65535, 0, 1.
    mask : array_like of uint32, shape (ref_ny, ref_nx), optional
        DQ bits OR-ed into the output DQ.
    zero_level : array_like, shape (ref_ny, ref_nx), optional
        Zero level in DN; by default extrapolated to t = 0 from the first two
        usable reads.
    offset : tuple of int
        ``(y, x)`` origin of the science frame inside the reference maps
        (subarrays).
    nthreads : int
        Threads; 0 uses all OpenMP threads.
    out : RampFitResult, optional
        Preallocated outputs (float32, float32, float32, uint32, uint16 arrays
        of shape ``(ny, nx)``), filled and returned.

    Returns
    -------
    RampFitResult
        Rate (DN/s), Poisson and read-noise variances, DQ and reads used.

    Raises
    ------
    TypeError
        Wrong dtype of the samples or outputs.
    ValueError
        Wrong shape or layout, unknown mode or weighting.
    IrisReadoutError
        Any problem reported by the C library (a ValueError).
    """
    _check_samples(samples)
    with RampFitter(
        samples.shape,
        mode=mode,
        fowler_n=fowler_n,
        jump_threshold=jump_threshold,
        jump_false_alarm=jump_false_alarm,
        weighting=weighting,
        nonlin_coeffs=nonlin_coeffs,
        saturation=saturation,
        read_noise=read_noise,
        gain=gain,
        mask=mask,
        zero_level=zero_level,
        offset=offset,
        nthreads=nthreads,
    ) as fitter:
        return fitter.fit(samples, read_times, out=out)


def combine_integrations(rate, var_poisson, var_rnoise, dq=None):
    """Combine integrations by inverse variance (the C combiner).

    Parameters
    ----------
    rate, var_poisson, var_rnoise : array_like, shape (nints, ...)
        Per-integration rates and variances (converted to float32).
    dq : array_like of uint32, shape (nints, ...), optional
        Per-integration DQ; integrations with DO_NOT_USE are skipped.

    Returns
    -------
    CombinedResult
        Rate, variances (propagated for the weights used) and DQ (OR of the
        inputs; DO_NOT_USE only where no integration was usable), each of
        shape ``rate.shape[1:]``.
    """
    rate = np.ascontiguousarray(rate, dtype=np.float32)
    if rate.ndim < 2:
        raise ValueError(f"rate must be (nints, ...), got shape {rate.shape}")
    arrays = [rate]
    for name, value, dtype in (
        ("var_poisson", var_poisson, np.float32),
        ("var_rnoise", var_rnoise, np.float32),
        ("dq", dq, np.uint32),
    ):
        if value is None:
            arrays.append(None)
            continue
        arr = np.ascontiguousarray(value, dtype=dtype)
        if arr.shape != rate.shape:
            raise ValueError(f"{name} has shape {arr.shape}, rate has {rate.shape}")
        arrays.append(arr)
    nints = rate.shape[0]
    shape = rate.shape[1:]
    npix = int(np.prod(shape))
    outs = [np.empty(shape, np.float32) for _ in range(3)] + [np.empty(shape, np.uint32)]

    ffi, lib = _ffi_lib()

    def ptr(arr, ctype):
        return ffi.NULL if arr is None else ffi.from_buffer(ctype, arr)

    err = ffi.new("iris_error *")
    status = lib.iris_readout_combine_integrations(
        nints,
        npix,
        ptr(arrays[0], "float[]"),
        ptr(arrays[1], "float[]"),
        ptr(arrays[2], "float[]"),
        ptr(arrays[3], "uint32_t[]"),
        ptr(outs[0], "float[]"),
        ptr(outs[1], "float[]"),
        ptr(outs[2], "float[]"),
        ptr(outs[3], "uint32_t[]"),
        err,
    )
    if status != lib.IRIS_OK:
        _raise(ffi, err)
    return CombinedResult(*outs)


def sum_reads(samples, nthreads=2, out=None):
    """Sum a uint16 ramp over its reads: the memory-bandwidth floor.

    A trivial one-pass C kernel over the same read-major cube as
    :func:`fit_ramp`, used by the benchmarks as the lower bound of any
    single-pass ramp fit.

    Parameters
    ----------
    samples : ndarray of uint16, shape (nreads, ny, nx)
        C-contiguous ramp (not copied).
    nthreads : int
        Threads; 0 uses all OpenMP threads.
    out : ndarray of uint32, shape (ny, nx), optional
        Preallocated output.

    Returns
    -------
    ndarray of uint32
        Per-pixel sum of the reads.
    """
    if not isinstance(samples, np.ndarray) or samples.dtype != np.uint16:
        raise TypeError("samples must be a uint16 numpy array")
    if samples.ndim != 3 or not samples.flags.c_contiguous:
        raise ValueError("samples must be a C-contiguous (nreads, ny, nx) array")
    shape = samples.shape[1:]
    if out is None:
        out = np.empty(shape, np.uint32)
    elif out.dtype != np.uint32 or out.shape != shape or not out.flags.c_contiguous:
        raise TypeError(f"out must be a C-contiguous uint32 array of shape {shape}")
    ffi, lib = _ffi_lib()
    err = ffi.new("iris_error *")
    status = lib.iris_readout_sum_reads(
        ffi.from_buffer("uint16_t[]", samples),
        samples.shape[0],
        out.size,
        ffi.from_buffer("uint32_t[]", out),
        int(nthreads),
        err,
    )
    if status != lib.IRIS_OK:
        _raise(ffi, err)
    return out
