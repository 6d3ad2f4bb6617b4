"""The per-exposure reducer: one Level 0 file -> Level 1 and 2 products, quality numbers and quick-look.

`ExposureReducer` holds one ``Detector1Pipeline``, one ``ProcessImagerL2Pipeline`` and one
``ProcessIFSL2Pipeline`` built once, so imports, step construction and the CRDS rules stay loaded
between frames; an imager exposure goes through detector1 and image2, an IFS exposure (``INSTMODE =
'IFS'`` or ``DETECTOR = 'IFU'``) through detector1 and spec2 (``_cal``, ``_s3d``, ``_x1d``); `reduce_exposure`
is the same work as a plain function for ``dask`` workers. The real-time service (``tmt-watch``),
the batch (``tmt-batch``) and the benchmark all reduce through them (``docs/operations_design.rst``).
"""

import gc
import logging
import os
import socket
import threading
import time
from collections import defaultdict, deque
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

__all__ = [
    "BACKGROUND_MODES",
    "ExposureReducer",
    "ExposureResult",
    "ServiceConfig",
    "is_sky_frame",
    "reduce_exposure",
    "sky_key",
]

log = logging.getLogger(__name__)

BACKGROUND_MODES = ("sky_frames", "own_sky", "none")
"""How science frames lose their sky: recent sky exposures, the frame's own sky level, or not at all."""

_CONFIG_SPEC = f"""
detector1_cfg = string(default=None)  # detector1 parameter file; None: the shipped detector1.cfg
image2_cfg = string(default=None)  # image2 parameter file; None: the shipped image2.cfg
spec2_cfg = string(default=None)  # spec2 parameter file, for IFS exposures; None: the shipped spec2.cfg
background = option({", ".join(repr(mode) for mode in BACKGROUND_MODES)}, default='sky_frames')
max_sky_frames = integer(min=1, default=2)  # most recent sky frames of a filter used as background members
quicklook = boolean(default=True)  # write the PNG and the DS9 regions beside the products
threads = integer(min=1, default=None)  # ramp-fitting threads; None: all cores
"""


@dataclass(frozen=True)
class ServiceConfig:
    """How the service and the batch reduce each exposure.

    Attributes
    ----------
    detector1_cfg, image2_cfg, spec2_cfg : str or None
        Parameter files of the pipelines; None: the shipped ``detector1.cfg`` / ``image2.cfg`` /
        ``spec2.cfg``.
    background : str
        ``"sky_frames"``: the most recent sky frames of the science frame's filter (and, for the
        IFS, its IFS mode and spaxel scale) are its background members (an imager frame's own sky
        until one is seen; an IFS frame's sky stays in its cube); ``"own_sky"``: an imager frame's
        own sky level (``steps.background.sky_from_science``; spec2 has no such mode: an IFS
        frame keeps its sky); ``"none"``.
    max_sky_frames : int
        Sky frames remembered per sky key (`sky_key`).
    quicklook : bool
        Write the quick-look PNG and the DS9 regions.
    threads : int or None
        Ramp-fitting threads (``steps.ramp_fit.nthreads``); None: all cores.
    """

    detector1_cfg: str | None = None
    image2_cfg: str | None = None
    spec2_cfg: str | None = None
    background: str = "sky_frames"
    max_sky_frames: int = 2
    quicklook: bool = True
    threads: int | None = None

    def __post_init__(self):
        if self.background not in BACKGROUND_MODES:
            raise ValueError(f"background must be one of {', '.join(BACKGROUND_MODES)}, not {self.background!r}")
        if self.max_sky_frames < 1:
            raise ValueError(f"max_sky_frames must be at least 1, not {self.max_sky_frames}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be at least 1 (or None for all cores), not {self.threads}")

    @classmethod
    def from_file(cls, path):
        """Read a service configuration (INI / ConfigObj syntax, the keys of this class).

        Relative ``detector1_cfg`` / ``image2_cfg`` / ``spec2_cfg`` paths are relative to the file's folder.

        Parameters
        ----------
        path : str or os.PathLike
            The ``.cfg`` file.

        Returns
        -------
        ServiceConfig

        Raises
        ------
        ValueError
            ``<path>: <problem>`` for a syntax error, an unknown key or a bad value.
        """
        from configobj import ConfigObj, ConfigObjError, flatten_errors
        from validate import Validator

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such service configuration file")
        try:
            config = ConfigObj(str(path), configspec=_CONFIG_SPEC.splitlines(), file_error=True)
        except ConfigObjError as exc:
            raise ValueError(f"{path}: not a configuration file ({' '.join(str(exc).split())})") from None
        unknown = [key for key in config if key not in config.configspec]
        if unknown:
            raise ValueError(f"{path}: unknown key(s) {', '.join(unknown)} (known: {', '.join(config.configspec)})")
        result = config.validate(Validator(), preserve_errors=True)
        if result is not True:
            _, key, error = next(iter(flatten_errors(config, result)))
            raise ValueError(f"{path}: {key}: {error or 'missing'}")
        values = dict(config)
        for key in ("detector1_cfg", "image2_cfg", "spec2_cfg"):
            if values[key] is not None:
                values[key] = str((path.parent / values[key]).resolve())
        return cls(**values)


@dataclass
class ExposureResult:
    """What became of one exposure (a line of the ledger and of the night log).

    Attributes
    ----------
    input : str
        Absolute path of the Level 0 file.
    name : str
        Its file name (the ledger key).
    status : str
        ``"done"`` or ``"failed"``.
    reason : str
        ``""``, or the one-line error ``tmtrun`` would print.
    products : dict
        ``{"rate", "cal", "png", "regions"}`` -> path, of those written; an IFS science
        exposure adds ``"s3d"`` (the cube, which the PNG and the regions show) and ``"x1d"``.
    qa : dict
        `liger_iris_pipeline.operations.qa.measure_quality`'s numbers (empty when failed): of the
        ``_cal`` frame, a sky frame's ``_rate``, or an IFS exposure's cube (DQ counts of its ``_cal``).
    latency : dict
        Seconds per stage: ``detector1``, ``image2`` or ``spec2``, ``qa``, ``quicklook``, ``total``.
    started, finished : str
        ISO 8601 UTC.
    host : str
        Where it ran.
    """

    input: str
    name: str
    status: str = "done"
    reason: str = ""
    products: dict = field(default_factory=dict)
    qa: dict = field(default_factory=dict)
    latency: dict = field(default_factory=dict)
    started: str = ""
    finished: str = ""
    host: str = field(default_factory=socket.gethostname)

    def as_record(self):
        """Return the result as a JSON-able dict (the ledger's record)."""
        return asdict(self)


def _now():
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _pipeline(shipped, config_file):
    """Build a pipeline from its parameter file, checked as ``tmtrun`` checks it."""
    from stpipe import Step

    from ..cli.tmtrun import cfg_files
    from ..stpipe.cfg_check import check_cfg_file

    if config_file is None:
        config_file = cfg_files()[shipped]
    else:
        check_cfg_file(config_file)
    return Step.from_config_file(str(config_file))


def _forget_input(pipeline):
    """Let a pipeline built once name its next products after its next input.

    stpipe names products after the first input a step instance was run on (``_input_filename``
    is set only while unset); a warm pipeline must start each run as a new one would.
    """
    for step in pipeline._steps():
        step._input_filename = None
        step._input_dir = None


def is_sky_frame(meta):
    """Return True for a sky exposure (EXP_TYPE ``*_SKY``): reduced to Level 1, a background candidate.

    Parameters
    ----------
    meta : TMTDataModel or dict
        Indexed by dotted metadata paths (``meta["meta.exposure.type"]``): a model, or the
        header-only dict of `liger_iris_pipeline.datamodels.header_metadata` (missing paths None).

    Returns
    -------
    bool
    """
    return (meta["meta.exposure.type"] or "").endswith("_SKY")


def sky_key(meta):
    """Return what a sky frame and the science frames it may serve share: filter and detector.

    An IFS sky frame (``SLI-SKY``) serves frames of its IFS mode and spaxel scale only: the
    slices fall elsewhere on the detector in another mode or scale.

    Parameters
    ----------
    meta : TMTDataModel or dict
        As for `is_sky_frame`.

    Returns
    -------
    tuple
        ``(filter, detector)``; for the IFS ``(filter, detector, ifs_mode, spaxel_scale)``.
    """
    from ..lib.observation import is_ifs

    key = meta["meta.instrument.filter"], meta["meta.instrument.detector"]
    if is_ifs(meta):
        key += (meta["meta.instrument.ifs_mode"], meta["meta.instrument.spaxel_scale"])
    return key


class ExposureReducer:
    """Reduce Level 0 exposures one at a time with pipelines kept warm between them.

    Parameters
    ----------
    output_dir : str or os.PathLike
        Where the products go (created if needed).
    config : ServiceConfig, optional
        The reduction's settings; the defaults of `ServiceConfig` when None.

    Notes
    -----
    The pipelines are built once, and each reference file is read once (the models stay open,
    read-only, between frames: `liger_iris_pipeline.lib.models.kept_references`). CRDS keeps
    its rules loaded between frames, so a look-up costs little, but it fixes the context in
    force at the first look-up for the life of the process; the reducer reads the context in force before each frame
    (``CRDS_CONTEXT``, else the cache's ``latest_context``) and, when it changed, makes CRDS
    look it up again and drops the kept references, so new rules and references take effect at
    the next frame.
    """

    def __init__(self, output_dir, config=None):
        self.output_dir = Path(output_dir).resolve()
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.config = config or ServiceConfig()
        self.detector1 = _pipeline("detector1.cfg", self.config.detector1_cfg)
        self.image2 = _pipeline("image2.cfg", self.config.image2_cfg)
        self.spec2 = _pipeline("spec2.cfg", self.config.spec2_cfg)
        for pipeline in (self.detector1, self.image2, self.spec2):
            pipeline.output_dir = str(self.output_dir)
            pipeline.save_results = True
        self.spec2.save_cal = True  # the detector frame the cube was built from, for the observer and its DQ counts
        self.detector1.ramp_fit.nthreads = self.config.threads or 0
        self.context = None
        self._skies = {}
        self._references = {}
        self._frozen = False

    def sky_frames(self, model):
        """Return the remembered sky rate files of a frame's `sky_key`, oldest first.

        Parameters
        ----------
        model : IRISImageModel or IRISIFSImageModel
            A frame (its filter and detector, and IFS mode and scale, are used).

        Returns
        -------
        list of str
        """
        return list(self._skies.get(sky_key(model), ()))

    def remember_sky(self, rate):
        """Remember a sky rate frame as a background candidate for later science frames of its filter.

        Parameters
        ----------
        rate : str, os.PathLike, IRISImageModel or IRISIFSImageModel
            A rate frame (a model must have been saved: its ``meta.filename`` in ``output_dir``).

        Returns
        -------
        bool
            True if it is a sky frame (`is_sky_frame`), now remembered; other frames are ignored.
        """
        if isinstance(rate, (str, os.PathLike)):
            from ..datamodels import MODEL_CLASSES, header_metadata
            from ..datamodels.open_model import declared_model_type

            # The headers only: a restarted service names every sky frame of the night.
            model_class = MODEL_CLASSES[declared_model_type(Path(rate))]
            meta, path = defaultdict(lambda: None, header_metadata(rate, model_class)), os.fspath(rate)
        else:
            meta, path = rate, str(self.output_dir / rate.meta.filename)
        if not is_sky_frame(meta):
            return False
        frames = self._skies.setdefault(sky_key(meta), deque(maxlen=self.config.max_sky_frames))
        if path in frames:
            frames.remove(path)
        frames.append(path)
        return True

    def check_context(self):
        """Follow a change of the CRDS context in force (see the class notes).

        Returns
        -------
        str or None
            The context in force, or None when the cache cannot say (the look-ups then report why).
        """
        from crds.core import heavy_client

        from ..crds_plugin import configure_environment
        from ..crds_plugin.diagnose import context_source

        try:
            context = context_source(configure_environment())[0]
        except Exception:  # noqa: BLE001 - a broken cache is reported, with its fix, by the frame's look-ups
            context = None
        if context != self.context:
            if self.context is not None:
                log.info("CRDS context changed from %s to %s: references are looked up again", self.context, context)
            # crds memoises the context (and the cache's configuration) for the life of the process.
            heavy_client.get_config_info.cache.clear()
            heavy_client.get_processing_mode.cache.clear()
            self.forget_references()
            self.context = context
        return context

    def forget_references(self):
        """Close the reference models kept between frames (they are read again when next needed)."""
        for model in self._references.values():
            model.close()
        self._references.clear()

    def reduce(self, uncal_path, background=None):
        """Reduce one Level 0 exposure; a failure is returned, not raised.

        Parameters
        ----------
        uncal_path : str or os.PathLike
            The Level 0 file.
        background : list of str, optional
            Level 1 sky rate files to use as background members (with ``background="sky_frames"``);
            None: the sky frames this reducer has reduced (or been told of with `remember_sky`).

        Returns
        -------
        ExposureResult
        """
        from ..lib.errors import failure_message

        uncal_path = Path(uncal_path).resolve()
        result = ExposureResult(input=str(uncal_path), name=uncal_path.name, started=_now())
        start = time.perf_counter()
        try:
            self._reduce(uncal_path, background, result)
        except Exception as exc:  # every failure is the frame's, reported as tmtrun would
            log.debug("%s failed", uncal_path, exc_info=True)
            for path in result.products.values():
                Path(path).unlink(missing_ok=True)
            result.status, result.reason = "failed", failure_message(exc, uncal_path)
            result.products, result.qa = {}, {}
        result.latency["total"] = time.perf_counter() - start
        result.finished = _now()
        if not self._frozen:
            # stpipe collects garbage at every step run: with the schemas, modules and pipelines of a
            # warm process in the collector's view, that is ~0.4 s a step. Once a Level 2 pipeline has
            # run, they are set aside (gc.freeze), so later collections see only what each frame makes.
            gc.collect()
            gc.freeze()
            self._frozen = "image2" in result.latency or "spec2" in result.latency
        return result

    def _reduce(self, uncal_path, background, result):
        from .. import datamodels
        from ..lib.models import kept_references
        from ..lib.observation import is_ifs
        from ..lib.output import OutputTransaction
        from ..pipeline.inputs import input_products

        self.check_context()
        latency = result.latency
        name = self.detector1.remove_suffix(uncal_path.name.split(".")[0])[0]
        # One transaction for both pipelines: a frame that fails in image2 or spec2 leaves no _rate either.
        # The ramp is opened here to be closed here: the service runs for nights.
        with (
            kept_references(self._references),
            OutputTransaction([(uncal_path, "input")]) as transaction,
            datamodels.open(uncal_path) as ramp,
        ):
            start = time.perf_counter()
            _forget_input(self.detector1)
            rate = self.detector1.run(ramp)
            latency["detector1"] = time.perf_counter() - start
            products = {"rate": self.output_dir / f"{name}_rate.fits"}
            sky, ifs = is_sky_frame(rate), is_ifs(rate)
            if not sky:
                product = input_products(rate)[0]
                members = self._background_members(rate, background)
                for member in members:
                    transaction.protect(member, "background member")
                product.background = members
                stage, pipeline = ("spec2", self.spec2) if ifs else ("image2", self.image2)
                start = time.perf_counter()
                _forget_input(pipeline)
                level2 = pipeline.run(product)
                latency[stage] = time.perf_counter() - start
                products["cal"] = self.output_dir / f"{name}_cal.fits"
                if ifs:
                    products["s3d"] = self.output_dir / f"{name}_s3d.fits"
                    if level2.meta.cal_step.extract_1d == "COMPLETE":
                        products["x1d"] = self.output_dir / f"{name}_x1d.fits"
        result.products = {kind: str(path) for kind, path in products.items()}
        if sky:
            self.remember_sky(rate)
            self._quality(rate, products["rate"], result)
        elif ifs:
            with datamodels.open(products["cal"]) as cal:  # its DQ: spec2 returns the cube only
                self._quality(level2, products["s3d"], result, detector_frame=cal)
        else:
            self._quality(level2, products["cal"], result)

    def _background_members(self, rate, background):
        """Choose the frame's background members and set image2's background step for it."""
        from ..lib.observation import is_ifs

        members = []
        if self.config.background == "sky_frames":
            members = list(background) if background is not None else self.sky_frames(rate)
        if is_ifs(rate):
            if not members:
                log.info(
                    "%s: no IFS sky frame of its key %s: its cube keeps the sky", rate.meta.filename, sky_key(rate)
                )
        else:
            self.image2.background.sky_from_science = self.config.background == "own_sky" or (
                self.config.background == "sky_frames" and not members
            )
        if members:
            log.debug("%s: background members %s", rate.meta.filename, ", ".join(Path(m).name for m in members))
        return [str(Path(member).resolve()) for member in members]

    def _quality(self, model, product, result, detector_frame=None):
        """Measure the frame's (or cube's) quality numbers and write its quick-look files beside the product."""
        from .qa import detected_sources, measure_quality

        start = time.perf_counter()
        sources = detected_sources(model)  # one detection for the QA numbers and the regions
        result.qa = measure_quality(model, sources, detector_frame=detector_frame)
        result.latency["qa"] = time.perf_counter() - start
        if not self.config.quicklook:
            return
        from ..quicklook.regions import CUBE_RADIUS_SPAXELS, DEFAULT_RADIUS_PIXELS, write_ds9_regions
        from ..quicklook.render import product_wcs, render_png

        start = time.perf_counter()
        png = product.with_suffix(".png")
        render_png(model, png)  # the product in memory: not read back
        result.products["png"] = str(png)
        if product.name.endswith(("_cal.fits", "_s3d.fits")):
            regions = product.with_suffix(".reg")
            radius = CUBE_RADIUS_SPAXELS if product.name.endswith("_s3d.fits") else DEFAULT_RADIUS_PIXELS
            write_ds9_regions(sources, product_wcs(model), regions, radius)
            result.products["regions"] = str(regions)
        result.latency["quicklook"] = time.perf_counter() - start


_REDUCERS = {}
"""(output folder, config, thread) -> its `ExposureReducer`, one per worker thread."""


def reduce_exposure(uncal_path, output_dir, config=None, background=None):
    """Reduce one Level 0 exposure: the task function of the batch (``dask``).

    The reducer, with its pipelines, is built at the first call in a process (and thread) and
    kept for later calls with the same output folder and configuration.

    Parameters
    ----------
    uncal_path : str or os.PathLike
        The Level 0 file.
    output_dir : str or os.PathLike
        Where the products go.
    config : ServiceConfig, optional
        The reduction's settings.
    background : list of str, optional
        Level 1 sky rate files to use as background members (see `ExposureReducer.reduce`).

    Returns
    -------
    dict
        `ExposureResult.as_record`.
    """
    key = (str(Path(output_dir).resolve()), config or ServiceConfig(), threading.get_ident())
    if key not in _REDUCERS:
        _REDUCERS[key] = ExposureReducer(output_dir, config)
    return _REDUCERS[key].reduce(uncal_path, background=background).as_record()
