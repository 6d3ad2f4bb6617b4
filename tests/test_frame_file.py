"""FrameFile: frames read a block of rows at a time, checked as a whole read checks them."""

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from level1_helpers import level1_from_truth, science_frame

from liger_iris_pipeline import datamodels
from liger_iris_pipeline import simulate as sim
from liger_iris_pipeline.background import BackgroundStep
from liger_iris_pipeline.datamodels import DataModelError, IRISImageModel
from liger_iris_pipeline.datamodels.frame_file import FrameFile, ones_complement_sum
from liger_iris_pipeline.dqflags import pixel as FLAGS
from liger_iris_pipeline.lib.blocks import row_blocks

ARRAYS = ("data", "err", "dq", "var_poisson", "var_rnoise", "var_flat")


@pytest.fixture(scope="module")
def sky_files(det, tmp_path_factory):
    folder = tmp_path_factory.mktemp("sky_files")
    paths = []
    for seed in range(3):
        ramp, truth = sim.simulate_sky_exposure(det, sky=40.0, nreads=5, seed=300 + seed)
        frame = level1_from_truth(ramp, truth, seed=400 + seed)
        frame.dq[seed, :7] |= FLAGS["HOT"]
        frame.data[5, 9] = np.nan
        frame.meta.filename = f"sky_{seed}_rate.fits"
        paths.append(str(folder / frame.meta.filename))
        frame.save(paths[-1])
    return paths


def test_rows_are_the_arrays_of_a_whole_read(sky_files):
    whole = datamodels.open(sky_files[0])
    with FrameFile(sky_files[0], IRISImageModel) as frame:
        assert frame.meta.filename == "sky_0_rate.fits"
        assert frame.data.shape == whole.data.shape
        for name in ARRAYS:
            reader = getattr(frame, name)
            blocks = [reader[rows] for rows in row_blocks(reader.shape, pixels=1000)]
            array = np.concatenate(blocks)
            assert array.dtype == getattr(whole, name).dtype.newbyteorder("=") and array.dtype.isnative
            np.testing.assert_array_equal(array, getattr(whole, name))
        np.testing.assert_array_equal(frame.dq[3:9, 2:5], whole.dq[3:9, 2:5])
        np.testing.assert_array_equal(np.asarray(frame.var_rnoise), whole.var_rnoise)
        frame.verify_sums()  # rows read in order, twice for some: the sums still hold
    whole.close()


def test_ones_complement_sum_is_the_datasum_astropy_writes(sky_files):
    with fits.open(sky_files[0]) as hdulist:
        hdu = hdulist["SCI"]
        raw = hdu.data.astype(">f4").tobytes()
        assert ones_complement_sum(raw[:4096], raw[4096:]) == int(hdu.header["DATASUM"])


@pytest.mark.parametrize("where", ["data", "header"])
def test_a_changed_byte_fails_the_sums_and_names_the_file(sky_files, tmp_path, where):
    damaged = tmp_path / "damaged_rate.fits"
    damaged.write_bytes(Path(sky_files[1]).read_bytes())
    with fits.open(damaged) as hdulist:
        info = hdulist["VAR_RNOISE"].fileinfo()
    with open(damaged, "r+b") as handle:
        if where == "data":
            handle.seek(info["datLoc"] + 1000)
            byte = handle.read(1)
            handle.seek(info["datLoc"] + 1000)
            handle.write(bytes([byte[0] ^ 0x10]))
        else:  # a letter of a keyword's comment: the card still parses, only CHECKSUM can tell
            handle.seek(info["hdrLoc"])
            header = handle.read(info["datLoc"] - info["hdrLoc"])
            at = info["hdrLoc"] + next(
                index + 3
                for index in range(0, len(header), 80)
                if b" / " in header[index : index + 80]
                for index in [index + header[index : index + 80].index(b" / ")]
            )
            handle.seek(at)
            letter = handle.read(1)
            handle.seek(at)
            handle.write(letter.swapcase())
    with FrameFile(damaged, IRISImageModel) as frame:
        for rows in row_blocks(frame.data.shape):
            frame.var_rnoise[rows]
        with pytest.raises(DataModelError, match=f"{damaged}: corrupt FITS file: .* of HDU .*VAR_RNOISE"):
            frame.verify_sums()


def test_background_members_from_files_give_what_models_give(det, sky_files):
    level1, _ = science_frame(det, sky=40.0, n_stars=10)
    members = [datamodels.open(path) for path in sky_files]
    from_models = BackgroundStep.call(level1, members)
    from_files = BackgroundStep.call(level1, *sky_files)
    for name in (*ARRAYS,):
        np.testing.assert_array_equal(getattr(from_files, name), getattr(from_models, name))
    assert from_files.meta.background.members == "sky_0_rate.fits,sky_1_rate.fits,sky_2_rate.fits"
    scaled = BackgroundStep.call(level1, *sky_files, scale_to_science=True)
    np.testing.assert_array_equal(scaled.data, BackgroundStep.call(level1, members, scale_to_science=True).data)
    for member in members:
        member.close()


def test_a_corrupt_member_file_stops_the_step(det, sky_files, tmp_path):
    level1, _ = science_frame(det, sky=40.0, n_stars=10)
    damaged = tmp_path / "sky_damaged_rate.fits"
    content = bytearray(Path(sky_files[2]).read_bytes())
    with fits.open(sky_files[2]) as hdulist:
        offset = hdulist["ERR"].fileinfo()["datLoc"] + 400
    content[offset] ^= 0x01
    damaged.write_bytes(bytes(content))
    before = level1.data.copy()
    with pytest.raises(DataModelError, match=f"{damaged}: corrupt FITS file: DATASUM of HDU .* \\(ERR\\)"):
        BackgroundStep.call(level1, sky_files[0], str(damaged))
    np.testing.assert_array_equal(level1.data, before)  # the caller's model is untouched


def test_a_member_of_another_kind_is_refused_by_name(det, small_reduction):
    level1, _ = science_frame(det, sky=40.0, n_stars=10)
    ramp = small_reduction["ramps"]["sky"]
    with pytest.raises(TypeError, match=f"{ramp}: the background member of .* must be an IRISImageModel"):
        BackgroundStep.call(level1, ramp)
