"""ModelLibrary and the image3 pipeline on dithered frames with pointing errors (`alignment_helpers`)."""

import json
from pathlib import Path

import numpy as np
import pytest
from alignment_helpers import PLATE_SCALE, make_frames, write_reference_catalog
from astropy.table import Table

from liger_iris_pipeline import datamodels
from liger_iris_pipeline.associations import AssociationError
from liger_iris_pipeline.associations.level3 import make_level3_asn
from liger_iris_pipeline.datamodels.library import ModelLibrary
from liger_iris_pipeline.pipeline import ProcessImagerL3Pipeline

CFG = Path(__file__).parents[1] / "liger_iris_pipeline" / "pipeline" / "cfgs" / "image3.cfg"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("image3")
    frames, truths, stars = make_frames(n=4, pointing_error_mas=30.0)
    paths = []
    for frame in frames:
        path = folder / frame.meta.filename
        frame.save(path)
        paths.append(path)
    asn = folder / "field_asn.json"
    make_level3_asn(paths, "field_Kbb", output=asn)
    refcat = write_reference_catalog(stars, folder / "refcat.ecsv", error_mas=2.0)
    return {"folder": folder, "paths": paths, "asn": asn, "refcat": refcat, "stars": stars, "truths": truths}


def test_library_groups_by_exposure_and_keeps_frames_on_disk(dataset, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    frames = [datamodels.open(path) for path in dataset["paths"]]
    frames[1].meta.observation.exposure_number = 1  # two detectors of one exposure
    paths = []
    for frame in frames:
        path = tmp_path / frame.meta.filename
        frame.save(path)
        frame.close()
        paths.append(path)
    library = ModelLibrary(paths, on_disk=True)
    assert library.group_indices == {"SIM-0001_001_00001": [0, 1], "SIM-0001_001_00003": [2], "SIM-0001_001_00004": [3]}
    with library:
        model = library.borrow(2)
        model.data += 1.0
        library.shelve(model, 2)
        # On disk: the frame was written to a temporary file and is read back from it.
        assert 2 in library._temp_filenames and Path(library._temp_filenames[2]).is_file()
    with library:
        again = library.borrow(2)
        assert again.meta.group_id == "SIM-0001_001_00003"
        original = datamodels.open(paths[2])
        np.testing.assert_allclose(again.data, original.data + 1.0)
        original.close()
        library.shelve(again, 2, modify=False)
    library.close()


def test_library_keeps_frame_facts_and_scratch_arrays(dataset, tmp_path, monkeypatch):
    from liger_iris_pipeline.resample.resample import (
        area_ratio,
        frame_summary,
        library_pixel_area,
        library_pixel_map,
        make_output_wcs,
    )

    monkeypatch.chdir(tmp_path)
    library = ModelLibrary(dataset["paths"][:2], on_disk=True)
    reads = []
    opened = library._datamodels_open
    monkeypatch.setattr(
        library, "_datamodels_open", lambda *args, **kwargs: reads.append(args) or opened(*args, **kwargs)
    )
    with library:
        first = library.frame_fact(0, "summary", frame_summary)
        again = library.frame_fact(0, "summary", frame_summary)
        assert len(reads) == 1 and again is not first  # kept, returned as a copy
        np.testing.assert_array_equal(again.footprint, first.footprint)
        # A frame written back gets its facts recomputed from it: no read to ask for them again.
        model = library.borrow(0)
        model.meta.filename = "renamed_cal.fits"
        library.shelve(model, 0)
        assert library.frame_fact(0, "summary", frame_summary).name == "renamed_cal.fits"
        assert len(reads) == 2
        grid, _ = make_output_wcs([first.footprint], 0.004)
        model = library.borrow(1)
        pixmap = library_pixel_map(library, 1, model, grid, 4)
        kept = library_pixel_map(library, 1, model, grid, 4)
        assert kept is not pixmap  # a fresh array read back from the temporary folder
        np.testing.assert_array_equal(kept, pixmap)
        area = library_pixel_area(library, 1, model, grid, 4, pixmap)
        np.testing.assert_array_equal(area, area_ratio(pixmap, 4))
        assert len(list((library._temp_path / "arrays").glob("1-pixarea-*.npy"))) == 1
        np.testing.assert_array_equal(library_pixel_area(library, 1, model, grid, 4), area)
        # Another frame WCS (a tweakreg correction) is another map.
        with datamodels.open(dataset["paths"][0]) as other:
            model.meta.wcs = other.meta.wcs
        assert not np.array_equal(library_pixel_map(library, 1, model, grid, 4), pixmap)
        assert len(list((library._temp_path / "arrays").glob("1-pixmap-*.npy"))) == 1
        library.shelve(model, 1, modify=False)
        # A metadata change without a read or a write: applied at each borrow until written back.
        writes = len(library._temp_filenames)
        library.update_later(1, lambda frame: setattr(frame.meta.background, "level", 0.5))
        assert len(reads) == 3 and len(library._temp_filenames) == writes
        for _ in range(2):
            model = library.borrow(1)
            assert model.meta.background.level == 0.5
            library.shelve(model, 1, modify=False)
        model = library.borrow(1)
        library.shelve(model, 1)
        assert not library._pending
        model = library.borrow(1)
        assert model.meta.background.level == 0.5  # from the temporary file
        library.shelve(model, 1, modify=False)
    library.close()
    # In memory, nothing is kept: the caller computes the map.
    memory = ModelLibrary(dataset["paths"][:1])
    with memory:
        model = memory.borrow(0)
        assert library_pixel_map(memory, 0, model, grid, 4) is None
        memory.shelve(model, 0, modify=False)


def test_library_sets_arrays_later_and_checks_a_changed_member_again(dataset, tmp_path, monkeypatch):
    """outlier_detection's new DQ waits beside the frame; a member read before is checked again once changed."""
    from liger_iris_pipeline.datamodels.model_base import DataModelError
    from liger_iris_pipeline.dqflags import pixel as FLAGS

    monkeypatch.chdir(tmp_path)
    paths = []
    for source in dataset["paths"][:2]:
        paths.append(tmp_path / source.name)
        paths[-1].write_bytes(source.read_bytes())
    library = ModelLibrary(paths, on_disk=True)
    with library:
        model = library.borrow(0)
        dq = model.dq | np.uint32(FLAGS["OUTLIER"])
        library.shelve(model, 0, modify=False)
        mark = lambda frame: setattr(frame.meta.cal_step, "outlier_detection", "COMPLETE")  # noqa: E731
        library.update_arrays_later(0, {"dq": dq}, mark)
        for _ in range(2):
            model = library.borrow(0)
            np.testing.assert_array_equal(model.dq, dq)
            assert model.meta.cal_step.outlier_detection == "COMPLETE"
            library.shelve(model, 0, modify=False)
        assert not library._temp_filenames  # the frame itself was not written
        # Member 1 was read (and checked) once; changed on disk, it is checked again at its next read.
        model = library.borrow(1)
        library.shelve(model, 1, modify=False)
        with open(paths[1], "r+b") as stream:
            stream.seek(-100, 2)
            stream.write(b"\x7f" * 50)
        with pytest.raises(DataModelError, match="DATASUM"):
            library.borrow(1)
    library.close()


def test_library_from_association(dataset):
    library = ModelLibrary(dataset["asn"])
    assert len(library) == 4
    assert library.product_name() == "field_Kbb"
    with library:
        model = library.borrow(0)
        assert model.meta.asn.table_name == "field_asn.json"
        library.shelve(model, 0, modify=False)


def test_image3_mosaic_catalog_and_products(dataset, tmp_path):
    mosaic = ProcessImagerL3Pipeline.call(
        str(dataset["asn"]),
        config_file=str(CFG),
        output_dir=str(tmp_path),
        # A shift only on these 1-arcsec frames: see test_tweakreg.
        steps={
            "tweakreg": {"abs_refcat": dataset["refcat"], "abs_fitgeometry": "shift"},
            "outlier_detection": {"save_results": True},
        },
    )
    assert isinstance(mosaic, datamodels.IRISMosaicModel)
    crf = [f"frame{index}_crf.fits" for index in range(4)]
    for name in ("field_Kbb_i2d.fits", "field_Kbb_cat.ecsv", "field_Kbb_segm.fits", *crf):
        assert (tmp_path / name).is_file(), name
    # No temporary frames left behind.
    assert not [p for p in Path.cwd().iterdir() if p.name.startswith("tmp") and p.is_dir() and not any(p.iterdir())]
    with datamodels.open(tmp_path / "field_Kbb_i2d.fits") as saved:
        assert saved.meta.cal_step.tweakreg == "COMPLETE"
        assert saved.meta.cal_step.resample == "COMPLETE"
        assert saved.meta.processing_level == 3
    catalog = Table.read(tmp_path / "field_Kbb_cat.ecsv")
    stars = dataset["stars"]
    # Mosaic positions of the bright isolated stars against the truth (after absolute alignment).
    cos = np.cos(np.radians(stars["dec"][0]))
    east, north = stars["ra"] * cos * 3.6e6, stars["dec"] * 3.6e6  # mas
    separations = np.hypot(east[:, None] - east[None], north[:, None] - north[None])
    np.fill_diagonal(separations, np.inf)
    isolated = separations.min(axis=1) > 25 * PLATE_SCALE * 1000.0  # no neighbour within 25 pixels
    residuals = []
    for row in catalog:
        d = np.hypot(east - row["ra"] * cos * 3.6e6, north - row["dec"] * 3.6e6)
        k = np.argmin(d)
        if d[k] < 8.0 and isolated[k] and row["segment_flux"] / row["segment_flux_err"] > 100:
            residuals.append((row["ra"] * cos * 3.6e6 - east[k], row["dec"] * 3.6e6 - north[k]))
    residuals = np.array(residuals) / (PLATE_SCALE * 1000.0)  # pixels, (east, north)
    assert len(residuals) >= 10
    # The common offset is the absolute alignment's error (catalog errors / sqrt(matches));
    # the scatter about it is the mosaic's own astrometry.
    offset = residuals.mean(axis=0)
    scatter = np.sqrt(np.mean(np.sum((residuals - offset) ** 2, axis=1)))
    print(f"mosaic: {len(residuals)} isolated stars, offset {offset.round(4)} px, rms about it {scatter:.4f} px")
    assert np.hypot(*offset) < 0.25  # 1 mas
    assert scatter < 0.02, scatter


def test_mixed_filters_are_refused(dataset, tmp_path):
    other = datamodels.open(dataset["paths"][1])
    other.meta.instrument.filter = "H"
    path = tmp_path / "other_cal.fits"
    other.save(path)
    other.close()
    asn = tmp_path / "mixed_asn.json"
    make_level3_asn([dataset["paths"][0], path], "mixed", output=asn)
    with pytest.raises(AssociationError, match=r"different filters \(H, Kbb\)"):
        ProcessImagerL3Pipeline.call(str(asn), output_dir=str(tmp_path))
    assert not list(tmp_path.glob("mixed_i2d*")) and not list(tmp_path.glob("mixed_cat*"))


def test_level2_association_is_refused(dataset, tmp_path):
    asn = tmp_path / "l2_asn.json"
    asn.write_text(
        json.dumps(
            {
                "asn_type": "image2",
                "products": [{"name": "x", "members": [{"expname": str(dataset["paths"][0]), "exptype": "science"}]}],
            }
        )
    )
    with pytest.raises(AssociationError, match="invalid Level 3 association"):
        ProcessImagerL3Pipeline.call(str(asn), output_dir=str(tmp_path))


def test_frames_that_do_not_overlap_are_refused(dataset, tmp_path):
    from liger_iris_pipeline.assign_wcs.imaging import complete_wcsinfo, make_gwcs

    far = datamodels.open(dataset["paths"][2])
    info = dict(far.meta.wcsinfo.instance)
    info["crval2"] += 0.01  # 36 arcsec north: no overlap
    info = complete_wcsinfo(info)
    far.meta.wcsinfo = info
    far.meta.wcs = make_gwcs(info, far.data.shape)
    path = tmp_path / "far_cal.fits"
    far.save(path)
    far.close()
    asn = tmp_path / "apart_asn.json"
    make_level3_asn([dataset["paths"][0], dataset["paths"][1], path], "apart", output=asn)
    with pytest.raises(AssociationError, match=r"far_cal.fits: no overlap with frame0_cal.fits"):
        ProcessImagerL3Pipeline.call(str(asn), output_dir=str(tmp_path))
    assert not list(tmp_path.glob("apart_i2d*"))


def test_level3_steps_run_alone_on_an_association(dataset, tmp_path):
    from liger_iris_pipeline.cli.tmtrun import main as tmtrun

    asn = str(dataset["asn"])
    assert tmtrun(["tweakreg", asn, f"--output_dir={tmp_path}", "--log-level=WARNING"]) == 0
    assert tmtrun(["skymatch", asn, f"--output_dir={tmp_path}", "--log-level=WARNING"]) == 0
    for index in range(4):
        for suffix in ("tweakreg", "skymatch"):
            with datamodels.open(tmp_path / f"frame{index}_{suffix}.fits") as model:
                assert getattr(model.meta.cal_step, suffix) == "COMPLETE"
