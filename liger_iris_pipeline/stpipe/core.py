"""`TMTStep` and `TMTPipeline`: stpipe base classes wired to the TMT CRDS cache.

They make sure the ``tmt`` CRDS observatory is registered and the package's CRDS defaults are
in place before CRDS is asked anything (see
`liger_iris_pipeline.crds_plugin.configure_environment`), turn CRDS failures into errors that
say which reference type, input values and context were involved, and record the references
and context used in the output (``R_*`` and ``CRDS_CTX``/``CRDS_VER`` keywords).
"""

import logging
import os
from pathlib import Path

from stpipe import Pipeline, Step, crds_client

from ..crds_plugin import INSTRUMENT, OBSERVATORY, configure_environment

__all__ = ["ReferenceFileError", "TMTPipeline", "TMTStep"]

log = logging.getLogger(__name__)


class ReferenceFileError(RuntimeError):
    """CRDS could not provide a reference file for an input."""


def _context_used():
    try:
        return crds_client.get_context_used(OBSERVATORY)
    except Exception as exc:  # noqa: BLE001 - only feeds an error message; the original error is chained
        return f"<unknown: {exc}>"


def _selection_parkeys(context, reference_file_type):
    """Return the parkeys the context's rmap selects `reference_file_type` by, or None if it has none."""
    from crds.core import rmap

    try:
        imap = rmap.get_cached_mapping(context).get_imap(INSTRUMENT)
        return imap.get_rmap(reference_file_type).get_required_parkeys()
    except Exception:  # noqa: BLE001 - the type is not in the context (or the context does not load)
        return None


def describe_lookup(parameters, reference_file_type):
    """Return the text naming a reference type, the input values CRDS selects it by, and the context.

    Parameters
    ----------
    parameters : dict
        ``get_crds_parameters()`` of the input.
    reference_file_type : str
        E.g. ``dark``.

    Returns
    -------
    str
    """
    context = _context_used()
    parkeys = _selection_parkeys(context, reference_file_type)
    values = {key.lower(): value for key, value in parameters.items()}
    if parkeys is None:
        shown = {key: values.get(key) for key in ("meta.instrument.name", "meta.instrument.detector")}
        return f"reference type {reference_file_type!r} is not defined in CRDS context {context} (input {shown})"
    shown = ", ".join(f"{key.lower()}={values.get(key.lower(), 'UNDEFINED')!r}" for key in parkeys)
    return f"{reference_file_type!r} reference for {shown} in CRDS context {context}"


def _reference_error(step, input_file, reference_file_type, exc):
    """Build the `ReferenceFileError` for a failed look-up."""
    try:
        parameters, _ = step._get_crds_parameters(input_file)
    except Exception:  # noqa: BLE001 - the input is not a model; describe what is known
        parameters = {}
    what = describe_lookup(parameters, reference_file_type)
    missing = _selected_but_missing(parameters, reference_file_type)
    if missing:
        return ReferenceFileError(
            f"{step.name}: {what} selects {missing}, which is not in the cache: build it with `tmt-crds-cache build`"
        )
    cause = " ".join(str(exc).split()).rstrip(".")
    return ReferenceFileError(
        f"{step.name}: no usable {what} ({cause}); add a rule to the context, or pass override_{reference_file_type}"
    )


def _selected_but_missing(parameters, reference_file_type):
    """Return the cache path of the file the rules select if it is absent from the cache, else None."""
    import crds

    try:
        name = crds.getrecommendations(parameters, reftypes=[reference_file_type], observatory=OBSERVATORY)[
            reference_file_type
        ]
        path = crds.locate_file(name, OBSERVATORY)
    except Exception:  # noqa: BLE001 - no rule selects a file: not a missing-file case
        return None
    return None if os.path.exists(path) else path


def _finalize(result, reference_files_used):
    """Record the references and CRDS context used in `result`'s metadata."""
    meta = getattr(result, "meta", None)
    if not reference_files_used or meta is None or not hasattr(meta, "ref_file"):
        return
    for reference_file_type, name in reference_files_used:
        try:
            getattr(meta.ref_file, reference_file_type).name = name
        except AttributeError:
            log.warning(
                "The %s schema has no meta.ref_file.%s: not recorded", type(result).__name__, reference_file_type
            )
    meta.ref_file.crds.sw_version = crds_client.get_svn_version()
    meta.ref_file.crds.context_used = _context_used()


KNOWN_SUFFIXES = (
    "uncal",
    "rate",
    "rateints",
    "bsub",
    "cal",
    "flat",
    "dark",
    "i2d",
    "crf",
    "dq_init",
    "ramp_fit",
    "dark_current",
    "flat_field",
    "background",
    "assign_wcs",
    "parse_subarray_map",
    "merge_subarrays",
    "normalize",
    "subtract_images",
)
"""File-name suffixes that output names replace (``x_uncal.fits`` -> ``x_rate.fits``)."""


class _TMTMixin:
    """What every TMT step and pipeline shares: our datamodels, CRDS defaults, suffixes, provenance."""

    spec = """
    output_ext = string(default='.fits')  # Default type of output
    """

    @classmethod
    def _datamodels_open(cls, init, **kwargs):
        """Open inputs with `liger_iris_pipeline.datamodels.open` (stpipe's hook).

        An association (``.json``) opens as its first science member, whose metadata selects
        the CRDS references and parameters.
        """
        from ..datamodels import open as open_model

        if isinstance(init, (str, os.PathLike)) and str(init).endswith(".json"):
            from ..associations import load_asn

            init = load_asn(init)[0].science
        return open_model(init, **kwargs)

    @classmethod
    def get_config_from_reference(cls, dataset, disable=None, crds_observatory=None):
        """Set the CRDS defaults (no ``pars-*`` look-ups unless asked for), then defer to stpipe."""
        configure_environment()
        return super().get_config_from_reference(dataset, disable=disable, crds_observatory=crds_observatory)

    @classmethod
    def _get_crds_parameters(cls, dataset):
        """Return the CRDS parameters of an input; for a file, from its headers only (stpipe's hook).

        stpipe opens the input for its metadata before and again inside a run; reading only the
        headers spares loading a full-frame ramp for it.
        """
        if isinstance(dataset, (str, os.PathLike)):
            from ..datamodels import MODEL_CLASSES, DataModelError, header_metadata
            from ..datamodels.open_model import declared_model_type

            path = Path(dataset)
            if path.suffix.lower() == ".json":
                from ..associations import load_asn

                path = load_asn(path)[0].science
            if path.suffix.lower() in (".fits", ".fit", ".fts") and path.exists():
                model_type = declared_model_type(path)
                if model_type not in MODEL_CLASSES:
                    raise DataModelError(f"{path}: unknown DATAMODL {model_type!r}")
                return header_metadata(path, MODEL_CLASSES[model_type]), OBSERVATORY
        return super()._get_crds_parameters(dataset)

    @staticmethod
    def remove_suffix(name):
        """Split a known product suffix off a file's base name.

        Parameters
        ----------
        name : str
            Base name without extension, e.g. ``exposure_uncal``.

        Returns
        -------
        tuple
            ``(name without the suffix, separator)``, or ``(name, None)`` when it has none.
        """
        for suffix in KNOWN_SUFFIXES:
            for separator in ("_", "-"):
                if name.endswith(separator + suffix):
                    return name[: -len(suffix) - 1], separator
        return name, None

    def finalize_result(self, result, reference_files_used):
        """Record ``meta.ref_file.<type>.name`` and the CRDS context and version in `result`."""
        _finalize(result, reference_files_used)


class TMTStep(_TMTMixin, Step):
    """Base class of the liger_iris_pipeline steps.

    Subclasses list ``reference_file_types`` (from
    `liger_iris_pipeline.crds_plugin.REFERENCE_TYPES`) and call ``self.get_reference_file``;
    ``override_<type>`` parameters still take precedence over CRDS.
    """

    def reference_model(self, input_model, reference_file_type, model_class):
        """Return the reference of a type for an input, opened as its model class, or None for ``N/A``.

        Parameters
        ----------
        input_model : liger_iris_pipeline.datamodels.TMTDataModel
            The input whose metadata selects the reference.
        reference_file_type : str
            E.g. ``dark``.
        model_class : type
            The reference's expected model class (`TMTDarkModel`...).

        Returns
        -------
        TMTReferenceFileModel or None
        """
        from ..lib.models import open_reference

        reference = self.get_reference_file(input_model, reference_file_type)
        if reference == "N/A":
            return None
        return open_reference(reference, model_class, reference_file_type, self.name)

    def get_reference_file(self, input_file, reference_file_type):
        """Return the path of the reference of a type for an input (or the override model/path).

        Parameters
        ----------
        input_file : liger_iris_pipeline.datamodels.TMTDataModel
            The input whose metadata selects the reference.
        reference_file_type : str
            E.g. ``dark``.

        Returns
        -------
        str or TMTDataModel
            Cache path, ``"N/A"``, or the ``override_<type>`` value.

        Raises
        ------
        ReferenceFileError
            CRDS selects no file, or the selected file is not in the cache.
        """
        if self.get_ref_override(reference_file_type) is not None:
            return super().get_reference_file(input_file, reference_file_type)
        configure_environment()
        try:
            return super().get_reference_file(input_file, reference_file_type)
        except Exception as exc:
            # crds fails in many ways (CrdsError, OSError, even AttributeError for a file absent from a
            # serverless cache); whichever it is, the user needs the type, values and context.
            raise _reference_error(self, input_file, reference_file_type, exc) from exc


class TMTPipeline(_TMTMixin, Pipeline):
    """Base class of the liger_iris_pipeline pipelines (see `TMTStep`)."""

    def _precache_references(self, input_file):
        """Fetch every step's references before the first step runs, one type at a time.

        stpipe's own prefetch tries to open override models as paths, and its single
        multi-type look-up cannot say which type failed; this one skips overrides (models or
        paths) and names the failing type.
        """
        configure_environment()
        try:
            parameters, observatory = self._get_crds_parameters(input_file)
        except (ValueError, TypeError, OSError):
            return  # not a model: each step looks up its own references when it runs
        for reference_file_type in sorted(set(self.reference_file_types)):
            if self.get_ref_override(reference_file_type) is not None:
                continue
            try:
                path = crds_client.get_reference_file(parameters, reference_file_type, observatory)
                crds_client.check_reference_open(path)
            except Exception as exc:  # the same failure modes as TMTStep.get_reference_file
                raise _reference_error(self, input_file, reference_file_type, exc) from exc
