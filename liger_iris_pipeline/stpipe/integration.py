"""``stpipe.steps`` entry point: makes ``strun``, ``stpipe list`` and ``tmtrun`` know our steps.

Class paths are strings so that listing the steps imports nothing.
"""

STEPS = (
    ("liger_iris_pipeline.dq_init.DQInitStep", "dq_init", False),
    ("liger_iris_pipeline.ramp_fitting.RampFitStep", "ramp_fit", False),
    ("liger_iris_pipeline.dark_current.DarkCurrentStep", "dark_current", False),
    ("liger_iris_pipeline.flat_field.FlatFieldStep", "flat_field", False),
    ("liger_iris_pipeline.background.BackgroundStep", "background", False),
    ("liger_iris_pipeline.subtract_images.SubtractImagesStep", "subtract_images", False),
    ("liger_iris_pipeline.normalize.NormalizeStep", "normalize", False),
    ("liger_iris_pipeline.parse_subarray_map.ParseSubarrayMapStep", "parse_subarray_map", False),
    ("liger_iris_pipeline.merge_subarrays.MergeSubarraysStep", "merge_subarrays", False),
    ("liger_iris_pipeline.assign_wcs.AssignWcsStep", "assign_wcs", False),
    ("liger_iris_pipeline.combine_darks.CombineDarksStep", "combine_darks", False),
    ("liger_iris_pipeline.fit_distortion.FitDistortionStep", "fit_distortion", False),
    ("liger_iris_pipeline.photom.PhotomStep", "photom", False),
    ("liger_iris_pipeline.measure_photom.MeasurePhotomStep", "measure_photom", False),
    ("liger_iris_pipeline.tweakreg.TweakRegStep", "tweakreg", False),
    ("liger_iris_pipeline.skymatch.SkyMatchStep", "skymatch", False),
    ("liger_iris_pipeline.outlier_detection.OutlierDetectionStep", "outlier_detection", False),
    ("liger_iris_pipeline.resample.ResampleStep", "resample", False),
    ("liger_iris_pipeline.source_catalog.SourceCatalogStep", "source_catalog", False),
    ("liger_iris_pipeline.wavecal.WavecalStep", "wavecal", False),
    ("liger_iris_pipeline.assign_wcs.AssignWcsIFSStep", "assign_wcs_ifs", False),
    ("liger_iris_pipeline.cube_build.CubeBuildStep", "cube_build", False),
    ("liger_iris_pipeline.extract_1d.Extract1dStep", "extract_1d", False),
    ("liger_iris_pipeline.telluric.TelluricStep", "telluric", False),
    ("liger_iris_pipeline.slice_geometry.SliceGeometryStep", "slice_geometry", False),
    ("liger_iris_pipeline.ifs_flat.IFSFlatStep", "ifs_flat", False),
    ("liger_iris_pipeline.pipeline.Detector1Pipeline", "detector1", True),
    ("liger_iris_pipeline.pipeline.ProcessImagerL2Pipeline", "image2", True),
    ("liger_iris_pipeline.pipeline.ProcessFlatfieldL2", "preprocess_flatfield", True),
    ("liger_iris_pipeline.pipeline.MasterDarkPipeline", "master_dark", True),
    ("liger_iris_pipeline.pipeline.DistortionCalibrationPipeline", "distortion_calibration", True),
    ("liger_iris_pipeline.pipeline.PhotomCalibrationPipeline", "photom_calibration", True),
    ("liger_iris_pipeline.pipeline.ProcessImagerL3Pipeline", "image3", True),
    ("liger_iris_pipeline.pipeline.WavecalCalibrationPipeline", "wavecal_calibration", True),
    ("liger_iris_pipeline.pipeline.ProcessIFSL2Pipeline", "spec2", True),
    ("liger_iris_pipeline.pipeline.SliceGeometryCalibrationPipeline", "slicegeo_calibration", True),
    ("liger_iris_pipeline.pipeline.IFSFlatCalibrationPipeline", "ifs_flat_calibration", True),
)
"""(class path, alias, is_pipeline) of every step and pipeline."""

PRODUCT_SUFFIXES = {
    "ramp_fit": "rate",
    "combine_darks": "dark",
    "detector1": "rate",
    "image2": "cal",
    "preprocess_flatfield": "flat",
    "master_dark": "dark",
    "fit_distortion": "distortion",
    "distortion_calibration": "distortion",
    "measure_photom": "photom",
    "photom_calibration": "photom",
    "outlier_detection": "crf",
    "resample": "i2d",
    "source_catalog": "cat",
    "image3": "i2d",
    "wavecal_calibration": "wavecal",
    "cube_build": "s3d",
    "extract_1d": "x1d",
    "spec2": "s3d",
    "slice_geometry": "slicegeo",
    "slicegeo_calibration": "slicegeo",
    "ifs_flat": "flat",
    "ifs_flat_calibration": "flat",
}
"""Alias -> suffix of the product of a step or pipeline run on its own; every other step's is its alias."""

OTHER_SUFFIXES = (
    "uncal",
    "rateints",
    "bsub",
    "combinedbackground",
    "i2d",
    "crf",
    "segm",
    "median",
    "blot",
    "outlier_i2d",
)
"""Suffixes of files no step names itself after (raw exposures, intermediate and Level 3 products)."""

KNOWN_SUFFIXES = tuple(
    sorted({*OTHER_SUFFIXES, *PRODUCT_SUFFIXES.values(), *(alias for _, alias, _ in STEPS)}, key=lambda s: (-len(s), s))
)
"""File-name suffixes that output names replace (``x_uncal.fits`` -> ``x_rate.fits``), longest first."""


def get_steps():
    """Return the steps and pipelines for stpipe's ``stpipe.steps`` entry point.

    Returns
    -------
    list of tuple
        ``(class path, alias, is_pipeline)``.
    """
    return list(STEPS)
