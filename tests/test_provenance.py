"""Provenance and conventions users expect of products: references used, association, background
members, units of every array, a status for every step, the observation category of the detector,
and a quiet log for a normal run."""

import logging

import numpy as np
from astropy.io import fits

from liger_iris_pipeline import datamodels, simulate
from liger_iris_pipeline.associations import make_asn
from liger_iris_pipeline.cli.tmtrun import main as tmtrun
from liger_iris_pipeline.lib.observation import observation_category
from liger_iris_pipeline.pipeline import ProcessImagerL2Pipeline
from liger_iris_pipeline.stpipe.integration import KNOWN_SUFFIXES, STEPS


def test_image2_product_records_its_provenance(small_cache_env, tmp_path, capsys):
    asn = tmp_path / "night_asn.json"
    make_asn([small_cache_env["rates"]["science"]], [small_cache_env["rates"]["sky"]], output=asn)
    assert tmtrun(["image2.cfg", str(asn), f"--output_dir={tmp_path}"]) == 0
    log = capsys.readouterr().out
    assert "Using FLAT reference file crds://tmt_iris_flat_0001.fits" in log
    assert " - WARNING - " not in log and " - ERROR - " not in log
    with fits.open(tmp_path / "sim_science_001_cal.fits") as hdulist:
        header = hdulist[0].header
        assert header["ASNTABLE"] == "night_asn.json" and header["ASNPOOL"] == "liger_iris_pipeline"
        assert header["BKGFILES"] == "sim_sky_001_rate.fits" and header["BKGNMEM"] == 1
        assert header["R_FLAT"] == "crds://tmt_iris_flat_0001.fits"
        assert header["DETSERNO"] == "SIM-20240101"
        assert header["OBSNAME"] == "IMG1-SCI" and header["PROCLEVL"] == 2
        # every step of image2 says what it did, also those that did nothing
        statuses = {key: header[key] for key in ("S_BKDSUB", "S_WCS", "S_SUBMAP", "S_DARK", "S_FLAT")}
        assert statuses == {
            "S_BKDSUB": "COMPLETE",
            "S_WCS": "COMPLETE",
            "S_SUBMAP": "SKIPPED",  # a full frame without subarrays
            "S_DARK": "SKIPPED",  # the dark cancelled in the sky subtraction
            "S_FLAT": "COMPLETE",
        }
        assert header["S_DQINIT"] == header["S_RAMP"] == "COMPLETE"
        units = {hdu.name: hdu.header.get("BUNIT") for hdu in hdulist[1:] if hdu.name != "ASDF"}
    assert units == {  # photom: the cache's context (tmt_0003) has a PHOTOM reference
        "SCI": "MJy/sr",
        "ERR": "MJy/sr",
        "DQ": None,
        "VAR_POISSON": "(MJy/sr)**2",
        "VAR_RNOISE": "(MJy/sr)**2",
        "VAR_FLAT": "(MJy/sr)**2",
    }


def test_steps_not_run_are_recorded_skipped(small_cache_env, tmp_path):
    assert tmtrun(["image2.cfg", small_cache_env["rates"]["science"], f"--output_dir={tmp_path}"]) == 0
    header = fits.getheader(tmp_path / "sim_science_001_cal.fits")
    # no background member and no sky_from_science: the background step never ran
    assert header["S_BKDSUB"] == "SKIPPED" and header["S_DARK"] == "COMPLETE"


def test_normal_full_frame_run_logs_no_warning(small_cache_env, tmp_path, caplog):
    with caplog.at_level(logging.INFO):
        assert tmtrun(["detector1.cfg", small_cache_env["ramps"]["science"], f"--output_dir={tmp_path}"]) == 0
        assert tmtrun(["image2.cfg", str(tmp_path / "sim_science_001_rate.fits"), f"--output_dir={tmp_path}"]) == 0
    assert not [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]
    used = [record.getMessage() for record in caplog.records if record.getMessage().startswith("Using ")]
    assert {message.split()[1] for message in used} >= {"MASK", "NONLIN", "SATURATION", "READNOISE", "GAIN", "DARK"}


def test_obsname_follows_the_detector(small_reduction):
    frame = datamodels.open(small_reduction["rates"]["science"])
    for detector in ("IMG1", "IMG2", "IMG3", "IMG4"):
        frame.meta.instrument.detector = detector
        assert observation_category(frame) == ("SCI", f"{detector}-SCI")
    frame.meta.exposure.type = "IRIS_DARK"
    assert observation_category(frame) == ("CAL", "IMG4-DRK")


def test_image2_of_another_imager_detector(small_reduction):
    frame = datamodels.open(small_reduction["rates"]["science"])
    frame.meta.instrument.detector = "IMG3"
    detector = simulate.make_detector((64, 64), seed=simulate.CACHE_DETECTOR_SEED)
    references = simulate.reference_models(detector)
    cal = ProcessImagerL2Pipeline.call(
        frame,
        steps={
            "dark_current": {"override_dark": references["DARK"]},
            "flat_field": {"override_flat": references["FLAT"]},
            "assign_wcs": {"override_distortion": "N/A"},  # the cache's rules are for IMG1
            "photom": {"override_photom": "N/A"},
        },
    )
    assert cal.meta.obsname == "IMG3-SCI"
    assert np.isfinite(cal.data[(cal.dq & 1) == 0]).all()


def test_every_step_names_its_product_with_a_known_suffix():
    for class_path, alias, _ in STEPS:
        module, name = class_path.rsplit(".", 1)
        step_class = getattr(__import__(module, fromlist=[name]), name)
        suffix = step_class().default_suffix()
        assert suffix in KNOWN_SUFFIXES and suffix != step_class.__name__.lower(), alias


def test_background_from_the_command_line_with_several_members(small_cache_env, tmp_path):
    sky = small_cache_env["rates"]["sky"]
    copy = tmp_path / "sky2_rate.fits"
    datamodels.open(sky).save(copy)
    assert tmtrun(["background", small_cache_env["rates"]["science"], sky, str(copy), f"--output_dir={tmp_path}"]) == 0
    product = datamodels.open(tmp_path / "sim_science_001_background.fits")
    assert product.meta.background.n_members == 2
    assert product.meta.background.members == "sim_sky_001_rate.fits,sky2_rate.fits"
    assert tmtrun(["merge_subarrays", small_cache_env["rates"]["science"], f"--output_dir={tmp_path}"]) == 0
    assert (tmp_path / "sim_science_001_merge_subarrays.fits").exists()
