"""Test data and checks for tests/test_cli.sh (needs numpy and astropy).

usage: cli_fixture.py make DIR          write the Level 0 inputs into DIR
       cli_fixture.py check OUT MODE    verify an iris_readout output file
"""

import sys
import warnings

import numpy as np
from astropy.io import fits

NREADS, NY, NX, RATE, TFRAME = 6, 5, 7, 40.0, 1.5


def ramp(nints):
    """Noiseless uint16 ramps of RATE DN/s, shaped (nints, nreads, ny, nx)."""
    t = TFRAME * np.arange(1, NREADS + 1)
    cube = 1000.0 + RATE * t[:, None, None] + np.zeros((NY, NX))
    return np.repeat(cube[None], nints, axis=0).astype(np.uint16), t


def write(path, sci, times=None, tframe=None):
    """Primary header + SCI (+ READ_TIMES) in the Level 0 layout."""
    primary = fits.PrimaryHDU()
    primary.header["INSTRUME"] = "IRIS"
    if tframe is not None:
        primary.header["TFRAME"] = tframe
    image = fits.ImageHDU(sci, name="SCI")
    image.header["CTYPE1"], image.header["CTYPE2"] = "RA---TAN", "DEC--TAN"
    hdus = [primary, image]
    if times is not None:
        hdus.append(fits.ImageHDU(np.asarray(times, np.float64), name="READ_TIMES"))
    fits.HDUList(hdus).writeto(path, overwrite=True)


def make(d):
    sci, t = ramp(2)
    write(f"{d}/l0_4d.fits", sci, tframe=TFRAME)  # 2 ints, TFRAME only
    write(f"{d}/l0_3d.fits", sci[0], times=t)  # 1 int, READ_TIMES
    write(f"{d}/l0_float.fits", sci[0].astype(np.float32), times=t)
    write(f"{d}/l0_2d.fits", sci[0, 0], times=t)
    with open(f"{d}/l0_3d.fits", "rb") as f:
        whole = f.read()
    with open(f"{d}/l0_truncated.fits", "wb") as f:
        f.write(whole[: len(whole) - 2880])  # the last block of READ_TIMES lost
    with open(f"{d}/l0_padded.fits", "wb") as f:
        f.write(whole + b"\0" * 2880)


def check(path, mode):
    warnings.simplefilter("error")  # a checksum mismatch is only a warning in astropy
    with fits.open(path, checksum=True) as hdul:
        names = [h.name for h in hdul]
        assert names == ["PRIMARY", "SCI", "ERR", "VAR_POISSON", "VAR_RNOISE", "VAR_FLAT", "DQ"], names
        head = hdul[0].header
        assert head["DATAMODL"] == "IRISImageModel", head["DATAMODL"]
        assert head["PROCLEVL"] == 1, head["PROCLEVL"]
        assert hdul["SCI"].header["BUNIT"] == "DN/s" and hdul["ERR"].header["BUNIT"] == "DN/s"
        for name in ("VAR_POISSON", "VAR_RNOISE", "VAR_FLAT"):
            assert hdul[name].header["BUNIT"] == "(DN/s)**2", name
        assert hdul["SCI"].header["CTYPE1"] == "RA---TAN"  # the ramp's WCS carried over
        for hdu in hdul:
            assert "CHECKSUM" in hdu.header and "DATASUM" in hdu.header, hdu.name
        assert head["READPATT"] == mode.upper(), head["READPATT"]
        assert head["INSTRUME"] == "IRIS"
        assert hdul["SCI"].data.dtype == np.dtype(">f4")
        assert hdul["DQ"].data.dtype.kind == "u" and hdul["DQ"].data.itemsize == 4
        np.testing.assert_allclose(hdul["SCI"].data, RATE, rtol=1e-5)
        assert (hdul["DQ"].data == 0).all()
        err = np.sqrt(hdul["VAR_POISSON"].data + hdul["VAR_RNOISE"].data)
        np.testing.assert_allclose(hdul["ERR"].data, err, rtol=1e-6)
        assert (hdul["VAR_POISSON"].data > 0).all()


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2])
    else:
        check(sys.argv[2], sys.argv[3])
