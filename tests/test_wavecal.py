"""The slicer's wavelength solution from a simulated arc frame, against the simulator's truth (small layout)."""

import numpy as np
import pytest
from numpy.polynomial import polynomial as P

from liger_iris_pipeline import dqflags
from liger_iris_pipeline import simulate as sim
from liger_iris_pipeline.pipeline.wavecal_calibration import simulated_arc_rate, wavecal_reference_for_cache
from liger_iris_pipeline.simulate import ifs
from liger_iris_pipeline.simulate.filters import FILTERS
from liger_iris_pipeline.simulate.references import reference_model
from liger_iris_pipeline.wavecal import wavecal
from liger_iris_pipeline.wavecal.arc_lines import arc_lines

FILTER = "KN3"


@pytest.fixture(scope="module")
def layout():
    return ifs.SlicerLayout.small()


@pytest.fixture(scope="module")
def detector_references(layout):
    """The IFS detector and its truth Level 1 references (models: no files that other test runs could clean up)."""
    detector = sim.make_detector(layout.detector_shape, seed=ifs.IFS_DETECTOR_SEED)
    references = {}
    for reftype in ("MASK", "NONLIN", "SATURATION", "READNOISE", "GAIN"):
        references[reftype] = reference_model(detector, reftype, filter=FILTER)
        references[reftype].meta.instrument.detector, references[reftype].meta.instrument.mode = "IFU", "IFS"
    return detector, references


@pytest.fixture(scope="module")
def arc_rate(detector_references, layout):
    """A Level 1 arc frame: the simulator's ramps through detector1 with the detector's truth references."""
    return simulated_arc_rate(*detector_references, layout, FILTER, seed=3)


def truth_slices(layout):
    """The slice geometry of the simulator's truth, as the slicegeo reference lists it."""
    traces = layout.trace_coefficients()
    return [
        {"slice": index, "ystart": layout.slice_rows(index)[0], "ystop": layout.slice_rows(index)[1], "trace": trace}
        for index, trace in enumerate(traces)
    ]


def band_lines(filter_name=FILTER, margin=0.1):
    """The arc lines of a filter's band, widened by a margin (fraction of its width)."""
    centre, width = FILTERS[filter_name]
    return arc_lines(centre - (0.5 + margin) * width, centre + (0.5 + margin) * width)[0]


def row_offsets(solution, truth, rows, n_spaxels, lines):
    """Predicted minus true rows of every line in the band at every spaxel centre (pixels)."""
    y = np.linspace(rows[0], rows[1] - 1, 20001)
    offsets = []
    for k in range(n_spaxels):
        s = np.full_like(y, k + 0.5)
        true, fitted = P.polyval2d(s, y, truth), P.polyval2d(s, y, solution)
        for wavelength in lines[(lines > true.min()) & (lines < true.max())]:
            offsets.append(np.interp(wavelength, fitted, y) - np.interp(wavelength, true, y))
    return np.array(offsets)


def _solve(arc_rate, layout, lines, **options):
    good = (arc_rate.dq & dqflags.pixel["DO_NOT_USE"]) == 0
    geometry = truth_slices(layout), layout.n_spaxels, layout.spaxel_pixels
    return wavecal.wavelength_solutions(arc_rate.data, arc_rate.err, good, *geometry, lines, **options)


def test_solution_predicts_line_positions_of_the_truth(arc_rate, layout):
    lines = band_lines()
    solutions = _solve(arc_rate, layout, lines)
    truth = layout.wavelength_coefficients(FILTER)
    offsets = np.concatenate(
        [
            row_offsets(row["coeffs"], truth[row["slice"]], layout.slice_rows(row["slice"]), layout.n_spaxels, lines)
            for row in solutions
        ]
    )
    assert offsets.size >= layout.n_slices * layout.n_spaxels * 5
    assert np.sqrt(np.mean(offsets**2)) < 0.02
    for row in solutions:
        assert row["nlines"] >= 5
        # The fit's own residuals are the centroids' noise: a few hundredths of a pixel at this brightness.
        assert 0.001 < row["rms_pix"] < 0.05
        kms_per_pixel = layout.dispersion(FILTER) / FILTERS[FILTER][0] * wavecal.SPEED_OF_LIGHT_KMS
        assert row["rms_kms"] == pytest.approx(row["rms_pix"] * kms_per_pixel, rel=0.3)


def test_too_few_lines_name_the_frame_and_slice(arc_rate, layout):
    lines = band_lines()
    faint = arc_rate.copy()
    start, stop = layout.slice_rows(2)
    first_column = int(layout.trace_coefficients()[2][0])
    faint.data[start:stop, first_column - 2 : first_column + layout.slice_width + 4] = 0.0
    with pytest.raises(wavecal.WavecalError, match=r"^arcs\.fits: slice 2: 0 arc lines identified"):
        _solve(faint, layout, lines, name="arcs.fits")
    with pytest.raises(wavecal.WavecalError, match=r"^arcs\.fits: slice 0: .* at least 20 needed"):
        _solve(arc_rate, layout, lines, name="arcs.fits", min_lines=20)


def test_identification_without_the_band_is_refused_when_ambiguous(arc_rate, layout):
    """Six lines of a narrow band, matched against the whole list: a chance match, caught by its rms."""
    # Refused either way: the wrong stretch of the list leaves residuals of tenths of a pixel, or
    # lines crowded by other list lines.
    with pytest.raises(wavecal.WavecalError, match=r"^arcs\.fits: slice \d: .*(misidentified|isolated lines)"):
        _solve(arc_rate, layout, arc_lines()[0], name="arcs.fits")


def test_fit_recovers_a_known_polynomial():
    truth = np.array([[2.15, 1.9e-4, 2e-9], [1e-6, 1e-9, 0.0], [3e-7, 0.0, 0.0]])
    s, y = np.meshgrid(np.arange(8) + 0.5, np.linspace(20, 480, 7))
    s, y = s.ravel(), y.ravel()
    wavelength = P.polyval2d(s, y, truth)
    y_measured = y + np.random.default_rng(2).normal(0.0, 0.01, y.size)
    y_measured[5] += 2.0  # a blend
    coefficients, used, residual = wavecal.fit_slice_solution(s, y_measured, wavelength, np.full(s.size, 0.01))
    assert not used[5] and used.sum() == s.size - 1
    assert np.std(residual[used]) == pytest.approx(0.01, rel=0.3)
    np.testing.assert_allclose(P.polyval2d(s, y, coefficients), wavelength, atol=0.01 * 2e-4)


def test_arc_lines_are_the_published_vacuum_wavelengths():
    wavelength, intensity = arc_lines()
    assert wavelength.size == 301 and np.all(np.diff(wavelength) > 0) and np.all(intensity >= 1000)
    # Kr I 2.19085 um and Ar I 2.06219 um (NIST ASD, vacuum Ritz).
    assert np.min(np.abs(wavelength - 2.19085101)) < 1e-8 and np.min(np.abs(wavelength - 2.062186)) < 1e-8
    assert np.array_equal(arc_lines(2.15, 2.24)[0], wavelength[(wavelength >= 2.15) & (wavelength <= 2.24)])


def truth_slice_geometry(layout, **instrument):
    """A slicegeo reference of the simulator's truth traces."""
    from liger_iris_pipeline import datamodels as dm

    model = dm.TMTSliceGeometryModel()
    table = np.zeros(layout.n_slices, dtype=model.get_dtype("slices"))
    table["SLICE"] = np.arange(layout.n_slices)
    table["BANK"] = table["SLICE"] // layout.slices_per_bank
    for row in truth_slices(layout):
        table["YSTART"][row["slice"]], table["YSTOP"][row["slice"]] = row["ystart"], row["ystop"]
        table["TRACE"][row["slice"], :3] = row["trace"]
    table["WIDTH"] = layout.slice_width
    model.slices = table
    model.meta.slice_geometry.n_spaxels = layout.n_spaxels
    model.meta.slice_geometry.spaxel_pixels = float(layout.spaxel_pixels)
    meta = {"telescope": "TMT", "reftype": "SLICEGEO", "useafter": "2024-01-01T00:00:00", "pedigree": "SIMULATION"}
    for key, value in {**meta, "description": "truth slice geometry", "author": "test"}.items():
        setattr(model.meta, key, value)
    values = {"name": "IRIS", "detector": "IFU", "ifs_mode": "SLICER", "spaxel_scale": layout.spaxel_scale}
    for key, value in {**values, **instrument}.items():
        setattr(model.meta.instrument, key, value)
    model.meta.filename = "truth_slicegeo.fits"
    return model


def test_step_writes_the_wavecal_reference(arc_rate, layout, tmp_path):
    from liger_iris_pipeline import datamodels as dm
    from liger_iris_pipeline.wavecal import WavecalStep

    centre, width = FILTERS[FILTER]
    band = [centre - 0.6 * width, centre + 0.6 * width]
    step = WavecalStep(override_slicegeo=truth_slice_geometry(layout), wavelength_range=band)
    with step.run(arc_rate) as reference:
        reference.save(tmp_path / "arc_wavecal.fits")
    with dm.open(tmp_path / "arc_wavecal.fits") as reference:
        assert isinstance(reference, dm.TMTWavecalModel)
        assert reference.meta.instrument.ifs_mode == "SLICER" and reference.meta.instrument.filter == FILTER
        assert reference.meta.instrument.spaxel_scale == layout.spaxel_scale
        table = reference.solutions
        assert list(table["SLICE"]) == list(range(layout.n_slices)) and np.all(table["NLINES"] >= 5)
        truth = layout.wavelength_coefficients(FILTER)
        lines = band_lines()
        for row in table:
            offsets = row_offsets(row["COEFFS"], truth[row["SLICE"]], layout.slice_rows(row["SLICE"]), 8, lines)
            assert np.sqrt(np.mean(offsets**2)) < 0.03


@pytest.mark.parametrize("instrument", [{"spaxel_scale": 0.025}, {"ifs_mode": "LENSLET", "spaxel_scale": 0.009}])
def test_slice_geometry_of_another_mode_or_scale_is_refused(arc_rate, layout, instrument):
    from liger_iris_pipeline.wavecal import WavecalStep

    geometry = truth_slice_geometry(layout, **instrument)
    arc = arc_rate.copy()
    arc.meta.filename = "ifs_arc_001_rate.fits"
    message = r"^truth_slicegeo\.fits: slice geometry for IFSMODE .* but ifs_arc_001_rate\.fits is IFSMODE SLICER"
    with pytest.raises(ValueError, match=message):
        WavecalStep.call(arc, override_slicegeo=geometry, wavelength_range=[2.1, 2.3])


def test_calibration_pipeline_from_the_command_line(arc_rate, layout, tmp_path, capsys):
    from liger_iris_pipeline import datamodels as dm
    from liger_iris_pipeline.cli.tmtrun import main as tmtrun

    arc, geometry = tmp_path / "ifs_arc_001_rate.fits", tmp_path / "truth_slicegeo.fits"
    arc_rate.save(arc)
    truth_slice_geometry(layout).save(geometry)
    arguments = ["wavecal_calibration.cfg", str(arc), f"--steps.wavecal.override_slicegeo={geometry}"]
    arguments += ["--steps.wavecal.wavelength_range=2.14,2.25", f"--output_dir={tmp_path}"]
    assert tmtrun(arguments) == 0
    with dm.open(tmp_path / "ifs_arc_001_wavecal.fits") as reference:
        assert isinstance(reference, dm.TMTWavecalModel) and len(reference.solutions) == layout.n_slices
        assert reference.meta.cal_step.wavecal == "COMPLETE"
    (tmp_path / "ifs_arc_001_wavecal.fits").unlink()
    capsys.readouterr()
    assert tmtrun([*arguments, "--steps.wavecal.min_lines=20"]) == 1
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert message == f"tmtrun: error: {arc}: slice 0: 6 arc lines identified (6 peaks found), at least 20 needed"
    assert not (tmp_path / "ifs_arc_001_wavecal.fits").exists()


def test_reference_for_the_simulated_cache(detector_references, layout):
    geometry = truth_slice_geometry(layout)
    with wavecal_reference_for_cache(*detector_references, layout, geometry, FILTER, "2024-01-01T00:00:00") as ref:
        assert ref.meta.pedigree == "SIMULATION" and ref.meta.instrument.filter == FILTER
        assert np.all(ref.solutions["NLINES"] == 6) and np.all(ref.solutions["RMS_PIX"] < 0.05)


def test_solution_with_the_geometry_fitted_from_a_lamp_flat(detector_references, arc_rate, layout):
    """The calibration chain: slice_geometry on a simulated Level 1 lamp flat, then wavecal on the arc."""
    from liger_iris_pipeline.pipeline.detector1 import detector1_with_references
    from liger_iris_pipeline.slice_geometry import SliceGeometryStep
    from liger_iris_pipeline.wavecal import WavecalStep

    detector, references = detector_references
    scene = ifs.exposure_scene("FLAT", layout, FILTER)
    ramp, _ = ifs.simulate_ifs_exposure(scene, detector, layout, kind="FLAT", filter=FILTER, nreads=5, seed=7)
    lamp = detector1_with_references(references).run(ramp)
    geometry = SliceGeometryStep.call(lamp, n_slices=layout.n_slices, n_spaxels=layout.n_spaxels)
    centre, width = FILTERS[FILTER]
    band = [centre - 0.6 * width, centre + 0.6 * width]
    truth, lines = layout.wavelength_coefficients(FILTER), band_lines()
    with WavecalStep.call(arc_rate, override_slicegeo=geometry, wavelength_range=band) as reference:
        offsets = [
            row_offsets(row["COEFFS"], truth[row["SLICE"]], layout.slice_rows(row["SLICE"]), layout.n_spaxels, lines)
            for row in reference.solutions
        ]
    assert np.sqrt(np.mean(np.concatenate(offsets) ** 2)) < 0.02
