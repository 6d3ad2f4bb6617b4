"""IFS exposures through the service's reducer (``operations/reduce.py``): detector1 then spec2 with sky frames.

Small slicer layout; the references are the simulator's truth (``ifs_helpers``), given to the
reducer the way an observatory would before CRDS has IFS rules: as ``override_*`` in the
pipelines' parameter files, named by the service configuration.
"""

import json
import os
import subprocess

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from ifs_helpers import FILTER, detector_reference, ifs_detector, ifs_flat, slicer_references
from regions import Regions

from liger_iris_pipeline import datamodels
from liger_iris_pipeline.operations.qa import DQ_COUNTS
from liger_iris_pipeline.operations.reduce import ExposureReducer, ServiceConfig, is_sky_frame, sky_key
from liger_iris_pipeline.simulate import ifs

SOURCE = ifs.PointSource(3.6, 2.4, abmag=16.0, lines={"Br_gamma": 400.0})
POINTING = (150.1, 2.2, 30.0)


def write_service_config(folder, layout, detector):
    """Write the truth references, detector1 and spec2 parameter files overriding them, and a service.cfg."""
    references = {name: detector_reference(detector, name.upper()) for name in ("mask", "nonlin", "saturation")}
    references.update({name: detector_reference(detector, name.upper()) for name in ("readnoise", "gain", "dark")})
    references["flat"] = ifs_flat(layout, detector)
    references["slicegeo"], references["wavecal"] = slicer_references(layout, detector)
    paths = {}
    for name, model in references.items():
        paths[name] = folder / f"truth_{name}.fits"
        model.save(paths[name])
    (folder / "detector1.cfg").write_text(
        f"""name = "Detector1Pipeline"
class = "liger_iris_pipeline.pipeline.Detector1Pipeline"
[steps]
  [[dq_init]]
    override_mask = "{paths["mask"]}"
  [[ramp_fit]]
    readout_mode = "header"
"""
        + "".join(f'    override_{name} = "{paths[name]}"\n' for name in ("nonlin", "saturation", "readnoise", "gain"))
    )
    (folder / "spec2.cfg").write_text(
        f"""name = "ProcessIFSL2Pipeline"
class = "liger_iris_pipeline.pipeline.ProcessIFSL2Pipeline"
[steps]
  [[dark_current]]
    override_dark = "{paths["dark"]}"
  [[flat_field]]
    override_flat = "{paths["flat"]}"
  [[assign_wcs]]
    override_slicegeo = "{paths["slicegeo"]}"
    override_wavecal = "{paths["wavecal"]}"
"""
    )
    config = folder / "service.cfg"
    config.write_text("detector1_cfg = detector1.cfg\nspec2_cfg = spec2.cfg\n")
    return config


def cube_noise(cube):
    """Median ERR of a cube's voxels with data, and their number."""
    good = np.isfinite(cube.data) & (cube.wmap > 0)
    return float(np.median(cube.err[good])), int(np.count_nonzero(good))


def median_error(noise, n):
    """Standard error of the median of n Gaussian values of standard deviation `noise`."""
    return 1.2533 * noise / np.sqrt(n)


def simulate_night(folder, layout, detector, filter_name, kinds=("sky", "science", "empty")):
    """Write Level 0 slicer ramps of `kinds` into `folder`; return ``({kind: file}, {kind: truth})``.

    ``sky``: a sky frame; ``science``: a point source on the sky; ``empty``: a science exposure of blank
    sky (what is left after the sky frame's subtraction is noise).
    """
    scenes = {"sky": (ifs.IFSScene(), 3), "science": (ifs.IFSScene(sources=[SOURCE]), 5), "empty": (ifs.IFSScene(), 7)}
    files, truths = {}, {}
    for kind in kinds:
        scene, seed = scenes[kind]
        exposure_kind = "SKY" if kind == "sky" else "SCIENCE"
        ramp, truths[kind] = ifs.simulate_ifs_exposure(
            scene, detector, layout, kind=exposure_kind, filter=filter_name, nreads=4, seed=seed, pointing=POINTING,
            cosmic_ray_rate=0.0,
        )  # fmt: skip
        files[kind] = folder / f"ifs_{kind}_001_uncal.fits"
        ramp.save(files[kind])
    return files, truths


@pytest.fixture(scope="module")
def ifs_night(tmp_path_factory):
    """Level 0 ramps of a slicer sky frame, a science frame and an empty field, with truth references as overrides."""
    work = tmp_path_factory.mktemp("ifs_night")
    layout = ifs.SlicerLayout.small()
    detector = ifs_detector(layout)
    files, truths = simulate_night(work, layout, detector, FILTER)
    config = ServiceConfig.from_file(write_service_config(work, layout, detector))
    return {"files": files, "truth": truths, "config": config, "layout": layout}


def test_ifs_sky_then_science_through_spec2(ifs_night, tmp_path):
    files, layout = ifs_night["files"], ifs_night["layout"]
    reducer = ExposureReducer(tmp_path, ifs_night["config"])
    sky = reducer.reduce(files["sky"])
    assert sky.status == "done", sky.reason
    assert sorted(sky.products) == ["png", "rate"]  # an IFS sky frame stops at Level 1, as the imager's
    with datamodels.open(sky.products["rate"]) as rate:
        assert isinstance(rate, datamodels.IRISIFSImageModel) and is_sky_frame(rate)
        assert sky_key(rate) == (FILTER, "IFU", "SLICER", layout.spaxel_scale)
    assert sky.qa["n_stars"] == 0  # a detector frame of spectra has no sources to count

    science = reducer.reduce(files["science"])
    assert science.status == "done", science.reason
    assert sorted(science.products) == ["cal", "png", "rate", "regions", "s3d", "x1d"]
    assert all(os.path.isfile(path) for path in science.products.values())
    assert science.products["png"].endswith("_s3d.png") and science.products["regions"].endswith("_s3d.reg")
    assert set(science.latency) == {"detector1", "spec2", "qa", "quicklook", "total"}
    with datamodels.open(science.products["s3d"]) as cube, datamodels.open(science.products["cal"]) as cal:
        assert isinstance(cube, datamodels.IRISCubeModel) and isinstance(cal, datamodels.IRISIFSImageModel)
        # The sky frame was the background member: subtracted from the science frame before the cube.
        assert cube.meta.cal_step.background == "COMPLETE" and cal.meta.background.n_members == 1
        counts = {key: int(np.count_nonzero(cal.dq & flag)) for key, flag in DQ_COUNTS.items()}
    qa = json.loads(json.dumps(science.as_record()))["qa"]
    assert {key: qa[key] for key in DQ_COUNTS} == counts and qa["n_bad"] > 0
    assert qa["n_stars"] == 1 and qa["exposure_type"] == "IRIS_IFS" and qa["filter"] == FILTER
    # The region file marks the source where the simulator put it, through the cube's spatial WCS.
    (circle,) = Regions.read(science.products["regions"], format="ds9")
    truth = ifs_night["truth"]["science"].sources[0]
    separation = circle.center.separation(SkyCoord(truth["ra"], truth["dec"], unit="deg"))
    assert separation.arcsec < 0.5 * layout.spaxel_scale

    # Blank sky minus the sky frame: the voxels' clipped median is 0 within its error, their scatter the
    # cube's own error (the point source's wings cover the whole small field of the science frame).
    empty = reducer.reduce(files["empty"])
    assert empty.status == "done", empty.reason
    assert "x1d" not in empty.products  # no source to extract: extract_1d skipped, the cube is still made
    with datamodels.open(empty.products["s3d"]) as cube:
        assert cube.meta.cal_step.background == "COMPLETE" and cube.meta.cal_step.extract_1d == "SKIPPED"
        median_err, n_good = cube_noise(cube)
    assert abs(empty.qa["sky_level"]) < 4 * median_error(empty.qa["sky_noise"], n_good)
    assert 0.85 < empty.qa["sky_noise"] / median_err < 1.15
    assert empty.qa["n_stars"] == 0 and not Regions.read(empty.products["regions"], format="ds9")


def test_ifs_science_without_a_sky_frame_of_its_key(ifs_night, tmp_path):
    """A sky frame of another spaxel scale does not serve it: the cube keeps the sky, the frame is reduced."""
    reducer = ExposureReducer(tmp_path, ServiceConfig(**{**vars(ifs_night["config"]), "quicklook": False}))
    other_scale = tmp_path / "other_rate.fits"
    frame = datamodels.IRISIFSImageModel((4, 4))
    with datamodels.open(ifs_night["files"]["sky"]) as ramp:
        frame.update(ramp)
    frame.meta.instrument.spaxel_scale = 0.025
    frame.save(other_scale)
    assert reducer.remember_sky(str(other_scale))  # a path as the ledger gives it
    result = reducer.reduce(ifs_night["files"]["empty"])
    assert result.status == "done", result.reason
    assert {"cal", "rate", "s3d"} <= set(result.products)  # x1d: where the centroid of the sky's light falls
    with datamodels.open(result.products["s3d"]) as cube:
        assert cube.meta.cal_step.background == "SKIPPED" and cube.meta.cal_step.dark_current == "COMPLETE"
        _, n_good = cube_noise(cube)
    # The night sky is still in the voxels: their median is many times its own error above zero.
    assert result.qa["sky_level"] > 10 * median_error(result.qa["sky_noise"], n_good)


def test_ifs_failure_is_one_line_and_leaves_nothing(ifs_night, tmp_path):
    """spec2 refusing a frame (here: no slice geometry) fails the exposure in one line; no _rate stays."""
    spec2_cfg = tmp_path / "spec2.cfg"
    spec2_cfg.write_text(
        'name = "ProcessIFSL2Pipeline"\nclass = "liger_iris_pipeline.pipeline.ProcessIFSL2Pipeline"\n'
        f'[steps]\n  [[assign_wcs]]\n    override_slicegeo = "{tmp_path / "missing_slicegeo.fits"}"\n'
    )
    config = ServiceConfig(**{**vars(ifs_night["config"]), "spec2_cfg": str(spec2_cfg), "quicklook": False})
    reducer = ExposureReducer(tmp_path / "out", config)
    result = reducer.reduce(ifs_night["files"]["science"])
    assert result.status == "failed" and "\n" not in result.reason
    assert result.products == {} and result.qa == {}
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == []


def test_batch_chooses_ifs_sky_frames_from_headers(ifs_night, tmp_path):
    """tmt-batch's client reads the same rule from the Level 0 headers: the sky frame of the same key serves."""
    from liger_iris_pipeline.operations.batch import Exposure, choose_background

    header = datamodels.header_metadata(ifs_night["files"]["sky"], datamodels.TMTRampModel)
    assert is_sky_frame(header) and sky_key(header) == (FILTER, "IFU", "SLICER", ifs_night["layout"].spaxel_scale)
    sky, science = (Exposure.read(ifs_night["files"][kind]) for kind in ("sky", "science"))
    assert sky.sky and not science.sky and sky.sky_key == science.sky_key
    other = Exposure(tmp_path / "other_uncal.fits", True, (FILTER, "IFU", "SLICER", 0.025), sky.start)
    assert choose_background(science, [(other, "other_rate.fits"), (sky, "sky_rate.fits")], 2) == ["sky_rate.fits"]


def test_tmt_watch_reduces_ifs_exposures(ifs_night, tmp_path):
    """The service on a night of IFS frames (sky first): its cube, spectrum, PNG and QA line, the ledger."""
    from test_watch import BIN, read_ledger

    incoming, output = tmp_path / "incoming", tmp_path / "output"
    incoming.mkdir()
    for age, kind in ((20, "sky"), (10, "science")):  # the sky frame arrived first
        copy = incoming / ifs_night["files"][kind].name
        copy.write_bytes(ifs_night["files"][kind].read_bytes())
        os.utime(copy, (copy.stat().st_atime - age, copy.stat().st_mtime - age))
    config = tmp_path / "service.cfg"
    config.write_text(
        f"detector1_cfg = {ifs_night['config'].detector1_cfg}\nspec2_cfg = {ifs_night['config'].spec2_cfg}\n"
    )
    command = [BIN / "tmt-watch", incoming, output, "--once", "--settle=0.1", f"--config={config}"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    records = read_ledger(output)
    assert [(record["name"], record["status"]) for record in records] == [
        ("ifs_sky_001_uncal.fits", "done"),
        ("ifs_science_001_uncal.fits", "done"),
    ], [record["reason"] for record in records]
    science = records[1]
    assert sorted(science["products"]) == ["cal", "png", "rate", "regions", "s3d", "x1d"]
    assert science["qa"]["n_stars"] == 1 and "spec2" in science["latency"]
    with datamodels.open(science["products"]["s3d"]) as cube:
        assert cube.meta.cal_step.background == "COMPLETE"
    (line,) = [line for line in result.stdout.splitlines() if "ifs_science_001_uncal.fits done in" in line]
    assert "spec2" in line and "1 stars" in line
    assert (output / "night_report.html").is_file()


def test_ifs_references_from_crds(ifs_night, tmp_path_factory, monkeypatch):
    """Without overrides, the IFS detector's references come from the checkout's context (IFU rules, in Kbb)."""
    from crds_helpers import build_tiny_cache

    from liger_iris_pipeline.crds_plugin import generate

    work = tmp_path_factory.mktemp("ifs_crds")
    cache = build_tiny_cache(work / "crds_cache", instruments=["iris"])
    for key in ("CRDS_CONTEXT", "CRDS_SERVER_URL"):  # only the user's choices: crds keeps its own in os.environ
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("CRDS_PATH", str(cache))
    layout = ifs_night["layout"]
    files, _ = simulate_night(work, layout, ifs_detector(layout), generate.IFU_FILTER, kinds=("sky", "science"))
    reducer = ExposureReducer(work / "output", ServiceConfig(quicklook=False))
    results = [reducer.reduce(files[kind]) for kind in ("sky", "science")]
    assert [result.status for result in results] == ["done", "done"], [result.reason for result in results]
    with datamodels.open(results[1].products["cal"]) as cal:
        references = cal.meta.ref_file.instance
        assert cal.meta.background.n_members == 1
    assert references["crds"]["context_used"] == f"tmt_{generate.LATEST_SERIAL:04d}.pmap"
    assert {references[name]["name"] for name in ("slicegeo", "wavecal", "flat", "mask")} == {
        "crds://tmt_iris_slicegeo_0001.fits",
        "crds://tmt_iris_wavecal_0001.fits",
        "crds://tmt_iris_flat_0002.fits",
        "crds://tmt_iris_mask_0002.fits",
    }
    assert results[1].qa["n_stars"] == 1
