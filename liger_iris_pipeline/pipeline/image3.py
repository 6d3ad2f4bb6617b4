"""ProcessImagerL3Pipeline (``image3``): calibrated imager frames (``_cal``) -> mosaic and catalog.

tweakreg -> skymatch -> outlier_detection -> resample -> source_catalog, on a `ModelLibrary`
kept on disk throughout (one frame in memory at a time, ``in_memory = False``). Products:
``<product>_i2d.fits`` (`IRISMosaicModel`), ``<product>_cat.ecsv`` and ``<product>_segm.fits``;
the flagged frames ``<frame>_crf.fits`` with ``steps.outlier_detection.save_results``.
"""

import contextlib
import gc
import logging
import os
from pathlib import Path

from ..associations.asn import AssociationError
from ..datamodels.library import ModelLibrary
from ..outlier_detection import OutlierDetectionStep
from ..resample import ResampleStep
from ..resample.resample import frame_summary
from ..skymatch import SkyMatchStep
from ..source_catalog import SourceCatalogStep
from ..stpipe import TMTPipeline
from ..tweakreg import TweakRegStep

__all__ = ["ProcessImagerL3Pipeline", "check_overlaps", "level3_library"]

log = logging.getLogger(__name__)


def level3_library(step_input, on_disk=True):
    """Open the input of ``image3`` as a `ModelLibrary`, refusing frames of mixed filters or instruments.

    Parameters
    ----------
    step_input : str, os.PathLike, ModelLibrary or list
        A Level 3 association (``.json``), a library, or a list of ``_cal`` files or models.
    on_disk : bool
        Keep the frames in temporary files (for a list of models: impossible, they stay in memory).

    Returns
    -------
    ModelLibrary

    Raises
    ------
    AssociationError
        An unreadable association, a member that is not a Level 2 imager frame, or members of
        different filters or instruments (one line naming them).
    """
    from ..associations.level3 import check_level3_members, read_level3_asn
    from ..datamodels.model_base import TMTDataModel

    if isinstance(step_input, ModelLibrary):
        library = step_input
        _check_library(library)
        return library
    if isinstance(step_input, (str, os.PathLike)):
        path = Path(step_input)
        if path.suffix.lower() != ".json":
            step_input = [path]
        else:
            document = read_level3_asn(path)
            members = [path.parent / member["expname"] for member in document["products"][0]["members"]]
            check_level3_members(members)
            return ModelLibrary(path, on_disk=on_disk)
    items = list(step_input)
    if not items:
        raise AssociationError("image3 needs at least one calibrated frame")
    if all(isinstance(item, (str, os.PathLike)) for item in items):
        check_level3_members(items)
        return ModelLibrary(items, on_disk=on_disk)
    if all(isinstance(item, TMTDataModel) for item in items):
        library = ModelLibrary(items)
        _check_library(library)
        return library
    raise AssociationError("image3 takes an association, a list of _cal files or a list of models, not a mix")


def _check_library(library):
    """Refuse a library whose frames have different filters or instruments."""
    seen = {"instrument": set(), "filter": set()}
    with library:
        for index, model in enumerate(library):
            seen["instrument"].add(str(model.meta.instrument.name))
            seen["filter"].add(str(model.meta.instrument.filter))
            library.shelve(model, index, modify=False)
    for key, values in seen.items():
        if len(values) > 1:
            raise AssociationError(
                f"Level 3 members have different {key}s ({', '.join(sorted(values))}): one association per {key}"
            )


def check_overlaps(library):
    """Raise `AssociationError` when a frame overlaps no other frame of the library (nothing to align or combine).

    Parameters
    ----------
    library : ModelLibrary
        Two frames or more, with their gwcs.
    """
    from spherical_geometry.polygon import SphericalPolygon

    from ..resample.resample import summarize_library

    # The frames' summaries: an on-disk library keeps them up to date for outlier_detection and resample.
    summaries = summarize_library(library)
    names = [summary.name if summary.name != "frame" else f"frame {index}" for index, summary in enumerate(summaries)]
    polygons = [SphericalPolygon.from_radec(*summary.footprint.T) for summary in summaries]
    # The frames must form one connected mosaic: grow a set from the first frame by overlaps.
    connected, frontier = {0}, [0]
    while frontier:
        current = frontier.pop()
        for other in range(len(polygons)):
            if other not in connected and polygons[current].intersects_poly(polygons[other]):
                connected.add(other)
                frontier.append(other)
    apart = [names[index] for index in range(len(names)) if index not in connected]
    if apart:
        raise AssociationError(
            f"{', '.join(apart)}: no overlap with {names[0]} and the frames overlapping it; "
            "image3 combines overlapping frames (one association per field)"
        )


@contextlib.contextmanager
def _steps_collect_new_objects_only():
    """Leave the objects that exist now out of the garbage collections stpipe makes before each step.

    stpipe collects all garbage at the start of every step's run, ~0.2 s each with what a process
    holds (modules, schemas, CRDS rules); image3 runs five steps. Under ``tmtrun`` those objects
    are frozen already (`TMTStep.run`); called from Python they are frozen here only when nothing
    is (the caller does not use `gc.freeze`), so that unfreezing them restores the caller's state.
    """
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()  # stpipe collected just before this pipeline's process()
    try:
        yield
    finally:
        gc.unfreeze()


class ProcessImagerL3Pipeline(TMTPipeline):
    """Combine dithered calibrated frames: align, match skies, flag outliers, drizzle, catalog.

    The frames stay in a `ModelLibrary`; each step borrows one frame at a time. An input of
    several filters or instruments is refused before any work.
    """

    class_alias = "image3"
    spec = """
    in_memory = boolean(default=False)  # keep every frame in memory instead of one at a time
    """
    combines_inputs = True
    step_defs = {
        "tweakreg": TweakRegStep,
        "skymatch": SkyMatchStep,
        "outlier_detection": OutlierDetectionStep,
        "resample": ResampleStep,
        "source_catalog": SourceCatalogStep,
    }

    def process(self, step_input):
        """Make the mosaic and catalog of the input.

        Parameters
        ----------
        step_input : str, os.PathLike, ModelLibrary or list
            A Level 3 association (``.json``), a library, or ``_cal`` frames (files or models).

        Returns
        -------
        IRISMosaicModel
            The mosaic (saved as ``<product>_i2d.fits``); the catalog and segmentation image are
            saved by ``source_catalog``.
        """
        library = level3_library(step_input, on_disk=not self.in_memory)
        product = self._product_name(library, step_input)
        self.output_file = product
        # Each step keeps the pipeline's choice of memory use.
        for step in (self.tweakreg, self.skymatch, self.outlier_detection, self.resample):
            step.in_memory = not library.on_disk
        log.info("image3: %d frames -> %s", len(library), product)
        with _steps_collect_new_objects_only():
            return self._combine(library, product)

    def _combine(self, library, product):
        # The frames' summaries (footprints) are taken while tweakreg and skymatch read the frames:
        # the overlaps are checked after them without a read of every frame (tweakreg and skymatch
        # log, and go on, when frames do not overlap; a failed run keeps none of its products).
        library.keep_fact("summary", frame_summary)
        library = self.tweakreg.run(library)
        library = self.skymatch.run(library)
        if len(library) > 1:
            check_overlaps(library)
            library = self.outlier_detection.run(library)
        else:
            log.warning("image3: one frame, outlier detection skipped")
            self.outlier_detection.skip = True
        mosaic = self.resample.run(library)
        mosaic.meta.filename = f"{product}_i2d.fits"
        mosaic.meta.processing_level = 3
        mosaic.meta.asn.table_name = library.asn.get("table_name") or mosaic.meta.asn.table_name

        if self.save_results:
            # <product>_cat.ecsv and <product>_segm.fits beside <product>_i2d.fits.
            self.source_catalog.save_results = True
            self.source_catalog.output_file = product
            if self.output_dir:
                self.source_catalog.output_dir = self.output_dir
        self.source_catalog.run(mosaic)
        mosaic.meta.cal_step.source_catalog = "COMPLETE"
        if library.on_disk:
            library.close()
        return mosaic

    @staticmethod
    def _product_name(library, step_input):
        """The association's product name, else the first frame's name without its suffix."""
        name = library.product_name()
        if name:
            return name
        if isinstance(step_input, (list, tuple)) and step_input:
            first = step_input[0]
            stem = Path(first.meta.filename if hasattr(first, "meta") else first).name.split(".")[0]
            return stem.rsplit("_", 1)[0] if "_" in stem else stem
        return "mosaic"

    def planned_outputs(self, *args):
        """Return ``<product>_i2d.fits`` (see `TMTStep.planned_outputs`)."""
        if not args or not isinstance(args[0], (str, os.PathLike)) or not str(args[0]).endswith(".json"):
            return []
        try:
            from ..associations.level3 import read_level3_asn

            product = read_level3_asn(args[0])["products"][0]["name"]
        except AssociationError:
            return []
        return [self.make_output_path(basepath=f"{product}.fits", suffix="i2d")]
