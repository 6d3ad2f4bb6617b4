"""`TMTStep` and `TMTPipeline`: stpipe base classes wired to the TMT CRDS cache.

They make sure the ``tmt`` CRDS observatory is registered and the package's CRDS defaults are
in place before CRDS is asked anything (see
`liger_iris_pipeline.crds_plugin.configure_environment`), turn CRDS failures into errors that
say which reference type, input values and context were involved, and record the references
and context used in the output (``R_*`` and ``CRDS_CTX``/``CRDS_VER`` keywords).
"""

import contextlib
import gc
import logging
import os
import re
from pathlib import Path

from stpipe import Pipeline, Step, crds_client

from ..crds_plugin import OBSERVATORY, CacheNotFoundError, configure_environment
from ..lib.errors import command_failed, one_line
from ..lib.output import OutputTransaction, active_transaction
from .cmdline import command_name, traceback_wanted, under_command_line
from .integration import KNOWN_SUFFIXES, PRODUCT_SUFFIXES

__all__ = ["ReferenceFileError", "StepSkipped", "TMTPipeline", "TMTStep", "check_detector"]

log = logging.getLogger(__name__)


class ReferenceFileError(RuntimeError):
    """CRDS could not provide a reference file for an input."""


def _context_used():
    try:
        return crds_client.get_context_used(OBSERVATORY)
    except Exception as exc:  # noqa: BLE001 - only feeds an error message; the original error is chained
        return f"<unknown: {exc}>"


@contextlib.contextmanager
def _crds_lookup():
    """Set up and check CRDS for a look-up, and keep crds's own log messages off stderr.

    A cache that cannot serve look-ups raises `ReferenceFileError` naming the file at fault
    before crds is asked (crds itself would log a FATAL message and exit).
    """
    from ..crds_plugin.diagnose import CrdsSetupError, check_cache, quiet

    try:
        configure_environment()
        check_cache()
    except (CrdsSetupError, CacheNotFoundError) as exc:
        raise ReferenceFileError(str(exc)) from None
    with quiet():
        try:
            yield
        except SystemExit as exc:  # crds's log.fatal_error
            raise ReferenceFileError(f"CRDS gave up (exit status {exc.code})") from None


def describe_lookup(parameters, reference_file_type, cause=None):
    """Return one line saying why CRDS gave no usable reference of a type for an input's values.

    Parameters
    ----------
    parameters : dict
        ``get_crds_parameters()`` of the input.
    reference_file_type : str
        E.g. ``dark``.
    cause : BaseException, optional
        crds's exception, quoted when nothing more precise is known.

    Returns
    -------
    str
        E.g. ``no DARK rule matches DETECTOR='IMG2' in tmt_iris_dark_0001.rmap (...)``, an
        invalid DATE-OBS, a selected file missing from the cache, or a cache that does not load.
    """
    from ..crds_plugin.diagnose import CrdsSetupError, explain_lookup

    try:
        return explain_lookup(parameters, reference_file_type, cause=cause)
    except CrdsSetupError as exc:
        return str(exc)
    except Exception as exc:  # noqa: BLE001 - the explanation must not hide the failure
        return f"no usable {reference_file_type.upper()} reference ({one_line(cause or exc)})"


def _reference_error(step, input_file, reference_file_type, exc):
    """Build the `ReferenceFileError` for a failed look-up: the input file, then `describe_lookup`."""
    if isinstance(exc, ReferenceFileError):
        return exc
    try:
        parameters, _ = step._get_crds_parameters(input_file)
    except Exception:  # noqa: BLE001 - the input is not a model; describe what is known
        parameters = {}
    message = describe_lookup(parameters, reference_file_type, cause=exc)
    name = _input_label([input_file]) if input_file is not None else None
    if name and not re.match(r"^[^\s:]+\.(pmap|imap|rmap|fits)\b|^CRDS", message):
        message = f"{name}: {message}"
    return ReferenceFileError(message)


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


class _TMTMixin:
    """What every TMT step and pipeline shares: our datamodels, CRDS defaults, suffixes, provenance,
    safe outputs and one-line failures on the command line."""

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
            from ..associations.level3 import association_members

            init = association_members(init)[0]
        return open_model(init, **kwargs)

    @classmethod
    def get_config_from_reference(cls, dataset, disable=None, crds_observatory=None):
        """Set the CRDS defaults (no ``pars-*`` look-ups unless asked for), then defer to stpipe.

        A CRDS set-up that does not work yields no parameters here: the run itself then
        reports the problem when it needs a reference.
        """
        from stpipe.step import get_disable_crds_steppars

        try:
            configure_environment()
        except Exception:  # noqa: BLE001 - reported, with its fix, by the first reference look-up
            return cls._empty_config()
        # strun passes disable=False unless --disable-crds-steppars: the package's default still holds.
        disable = disable or get_disable_crds_steppars()
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
                from ..associations.level3 import association_members

                path = association_members(path)[0]
            if path.suffix.lower() in (".fits", ".fit", ".fts") and path.exists():
                model_type = declared_model_type(path)
                if model_type not in MODEL_CLASSES:
                    raise DataModelError(f"{path}: unknown DATAMODL {model_type!r}")
                return header_metadata(path, MODEL_CLASSES[model_type]), OBSERVATORY
        return super()._get_crds_parameters(dataset)

    @classmethod
    def from_config_section(cls, config, parent=None, name=None, config_file=None):
        """Build the step from its configuration; on the command line a bad parameter is one line."""
        from stpipe.exceptions import ValidationError

        from .cfg_check import describe_validation_error

        try:
            return super().from_config_section(config, parent=parent, name=name, config_file=config_file)
        except ValidationError as exc:
            if parent is None and under_command_line():
                source = config_file or cls.class_alias or cls.__name__
                message = describe_validation_error(exc, cls, cls.load_spec_file(), config, source)
                command_failed(command_name(), ValidationError(message))
                raise SystemExit(1) from None
            raise

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

    def default_suffix(self):
        """Return the suffix of this step's product: ``rate``, ``cal``... or the step's alias."""
        alias = self.class_alias or self.name.lower()
        return PRODUCT_SUFFIXES.get(alias, alias)

    def finalize_result(self, result, reference_files_used):
        """Record ``meta.ref_file.<type>.name`` and the CRDS context and version in `result`."""
        _finalize(result, reference_files_used)

    def run(self, *args):
        """Run the step; a run started by the user (not by a pipeline) writes all its products or none.

        The products are written under temporary names and renamed when the whole run has
        succeeded; a product named like one of the run's inputs or references is refused, before
        any work when its name is known in advance (`planned_outputs`). Under ``strun`` or
        ``tmtrun`` a failure is reported as one line and exits with status 1.
        """
        if self.parent is not None:
            return super().run(*args)
        if not under_command_line():  # called from Python: the caller manages garbage collection (the service)
            return self._run_outermost(*args)
        # stpipe collects all garbage at the start of every step's run, which takes ~0.2 s per step
        # with what a process holds (modules, schemas, CRDS rules). Collected once here, the objects
        # that exist before the run are then left out of the steps' collections (frozen) until it ends.
        gc.collect()
        gc.freeze()
        try:
            return self._run_outermost(*args)
        finally:
            gc.unfreeze()

    def _run_outermost(self, *args):
        if active_transaction() is not None:
            return super().run(*args)
        command_line = under_command_line()
        try:
            with OutputTransaction(self._protected_files(args)) as transaction:
                if args and (self.save_results or self.output_file):
                    for path in self.planned_outputs(*args):
                        transaction.check(path)
                return super().run(*args)
        except Exception as exc:
            if not command_line:
                raise
            command_failed(command_name(), exc, file=_input_label(args), show_traceback=traceback_wanted())
            raise SystemExit(1) from None

    def planned_outputs(self, *args):
        """Return the files a run with these inputs saves as its results (their final names).

        Parameters
        ----------
        *args
            The run's inputs.

        Returns
        -------
        list of str
        """
        suffixes = [self.suffix or self.default_suffix()]
        suffixes += [suffix for flag, suffix in self.intermediate_products.items() if getattr(self, flag, False)]
        steps = self._steps()[1:]
        suffixes += [step.default_suffix() for step in steps if step.save_results]
        if self.output_file and not self.names_products_by_model:
            basepaths = [self.output_file]
        else:
            names = _product_names(args[0])
            one_product = self.combines_inputs or not self.names_products_by_model
            basepaths = [f"{name}.fits" for name in (names[:1] if one_product else names)]
        return [self.make_output_path(basepath=base, suffix=suffix) for base in basepaths for suffix in suffixes]

    names_products_by_model = False
    """True for pipelines that name each product after its input product (``output_use_model``)."""

    combines_inputs = False
    """True for pipelines that combine all their inputs into one product, named after the first."""

    intermediate_products = {}
    """Parameter -> suffix of the optional intermediate products a pipeline saves (``save_bsub``...)."""

    def _steps(self):
        """Return this step and, for a pipeline, its steps."""
        return [self, *(getattr(self, alias) for alias in getattr(self, "step_defs", {}))]

    def _protected_files(self, args):
        """Return ``(path, role)`` of the run's input files, association members and reference overrides."""
        from ..associations import AssociationError
        from ..associations.level3 import association_members

        protected = []

        def add(item, role):
            if isinstance(item, (list, tuple)):
                for element in item:
                    add(element, role)
            elif isinstance(item, (str, os.PathLike)):
                path = self.make_input_path(os.fspath(item))
                protected.append((path, role))
                if path.endswith(".json") and os.path.isfile(path):
                    with contextlib.suppress(AssociationError):
                        add(association_members(path, check_files=False), "association member")

        add(list(args), "input")
        for step in self._steps():
            for reference_file_type in step.reference_file_types:
                override = getattr(step, f"override_{reference_file_type}", None)
                if isinstance(override, str) and override.strip() not in ("", "N/A"):
                    protected.append((override, f"{reference_file_type} reference"))
        return protected


def _product_names(item):
    """Return the product names an input stands for (file names without suffix and extension)."""
    from ..pipeline.inputs import input_products

    return [product.name for product in input_products(item)]


def _input_label(args):
    """Return the name of a run's first input file for messages, or None."""
    if not args:
        return None
    first = args[0][0] if isinstance(args[0], (list, tuple)) and args[0] else args[0]
    if isinstance(first, (str, os.PathLike)):
        return os.fspath(first)
    filename = getattr(getattr(first, "meta", None), "filename", None)
    return filename or None


class StepSkipped(Exception):  # noqa: N818 - a signal, not an error
    """Raised by `TMTStep.apply` when the step has nothing to do; the message says why."""


class TMTStep(_TMTMixin, Step):
    """Base class of the liger_iris_pipeline steps: the template every step follows.

    `process` opens the input as the model class the step declares (``input_model``), opens
    each of its ``reference_file_types`` (from `liger_iris_pipeline.reference_types`; N/A
    skips the step unless the type is in ``optional_reference_types``), calls the step's
    `apply` with them and records ``meta.cal_step.<class_alias>`` as ``COMPLETE``, or
    ``SKIPPED`` when `apply` raises `StepSkipped`. A step class is then its spec, its
    references and its `apply`. ``override_<type>`` parameters take precedence over CRDS.
    """

    input_model = ("IRISImageModel",)
    """Names of the `liger_iris_pipeline.datamodels` classes the step accepts as its input."""

    input_role = "input"
    """What the input is to the step, for messages."""

    more_inputs_role = None
    """What inputs after the first are to the step (``background member``...); None: it takes one."""

    frames_input = False
    """True for steps that combine frames: all inputs (lists flattened) reach `apply` as one list."""

    optional_reference_types = ()
    """Types the step works without: an N/A reference reaches `apply` as None instead of skipping."""

    def process(self, step_input, *more_inputs):
        """Open the inputs and references, apply the step, record its outcome.

        Parameters
        ----------
        step_input : str, os.PathLike, TMTDataModel or list of them
            The input (not modified: the step works on a copy, unless it runs inside a pipeline,
            which hands over the model it owns), or the frames to combine.
        *more_inputs : str, os.PathLike, TMTDataModel or list of them
            Further inputs of steps that take them (``more_inputs_role``).

        Returns
        -------
        TMTDataModel
        """
        if self.frames_input:
            frames = [self.open_input(frame, copy=False) for frame in _flatten([step_input, *more_inputs])]
            model, more = frames, []
        else:
            if more_inputs and self.more_inputs_role is None:
                raise TypeError(f"{self.name} takes one input, got {1 + len(more_inputs)}")
            # A pipeline passes its steps the model it owns (it copied or read its input once), so a
            # step inside a pipeline works on it in place: no whole-frame copy per step.
            model = self.open_input(step_input, copy=self.parent is None)
            more = [self.open_more_input(item) for item in _flatten(more_inputs)]
        references = {}
        for reference_file_type in self.reference_file_types:
            reference = self.reference_model(frames[0] if self.frames_input else model, reference_file_type)
            if reference is None and reference_file_type not in self.optional_reference_types:
                return self._skipped(model, f"the {reference_file_type} reference is N/A")
            references[reference_file_type] = reference
        try:
            result = self.apply(model, *more, **references)
        except StepSkipped as skipped:
            return self._skipped(model, str(skipped))
        if result is None:
            result = model
        setattr(result.meta.cal_step, self.class_alias, "COMPLETE")
        return result

    def apply(self, model, *more, **references):
        """Do the step's work on its opened input; every step defines it.

        Parameters
        ----------
        model : TMTDataModel or list of TMTDataModel
            The step's own copy of its input (the frames, for ``frames_input`` steps).
        *more : TMTDataModel
            Further inputs, opened (``more_inputs_role``).
        **references : TMTReferenceFileModel or None
            One per ``reference_file_types`` entry, by type name.

        Returns
        -------
        TMTDataModel or None
            The product; None when it is ``model``, changed in place.

        Raises
        ------
        StepSkipped
            Nothing to do; the input is returned marked ``SKIPPED``.
        """
        raise NotImplementedError(f"{type(self).__name__} does not define apply()")

    def open_input(self, init, role=None, copy=True):
        """Open one input as a model of the classes the step declares.

        Parameters
        ----------
        init : str, os.PathLike or TMTDataModel
            The input.
        role : str, optional
            What it is to the step, for messages (``input_role`` by default).
        copy : bool
            Work on a copy of a model passed in (False for inputs the step only reads).

        Returns
        -------
        TMTDataModel
        """
        from ..lib.models import open_input

        return open_input(init, self.input_model, self.name, role or self.input_role, copy=copy)

    def open_more_input(self, init):
        """Open one of the further inputs (``more_inputs_role``), which the step only reads.

        Parameters
        ----------
        init : str, os.PathLike or TMTDataModel
            The input.

        Returns
        -------
        TMTDataModel
        """
        return self.open_input(init, self.more_inputs_role, copy=False)

    def _skipped(self, model, reason):
        from ..lib.status import mark_skipped

        return mark_skipped(model[0] if isinstance(model, list) else model, self, reason)

    def reference_model(self, input_model, reference_file_type, model_class=None):
        """Return the reference of a type for an input, opened as its model class, or None for ``N/A``.

        Logs the file used, protects it from being overwritten by the run's products, and
        refuses a reference made for another detector (``DETSERNO``) than the input's.

        Parameters
        ----------
        input_model : liger_iris_pipeline.datamodels.TMTDataModel
            The input whose metadata selects the reference.
        reference_file_type : str
            E.g. ``dark``.
        model_class : type, optional
            The reference's expected model class; by default the registry's.

        Returns
        -------
        TMTReferenceFileModel or None

        Raises
        ------
        ReferenceFileError
            No reference, or one of another detector.
        """
        from .. import datamodels
        from ..lib.models import model_name, open_reference
        from ..reference_types import reference_type

        if model_class is None:
            model_class = getattr(datamodels, reference_type(reference_file_type).model)
        reference = self.get_reference_file(input_model, reference_file_type)
        if reference == "N/A":
            log.info("%s: no %s reference (N/A)", self.name, reference_file_type.upper())
            return None
        if isinstance(reference, (str, os.PathLike)):
            shown = self._reference_files_used[-1][1] if self._reference_files_used else reference
            log.info("Using %s reference file %s", reference_file_type.upper(), shown)
            transaction = active_transaction()
            if transaction is not None:
                transaction.protect(reference, f"{reference_file_type} reference")
        else:
            log.info("Using %s reference model %s", reference_file_type.upper(), model_name(reference))
        model = open_reference(reference, model_class, reference_file_type, self.name)
        check_detector(input_model, model, reference_file_type)
        return model

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
        try:
            with _crds_lookup():
                return super().get_reference_file(input_file, reference_file_type)
        except Exception as exc:
            if reference_file_type in self.optional_reference_types and _type_unknown(exc):
                # An older context, made before the type existed: the step runs without it.
                log.info("%s: the CRDS context has no %s rules (N/A)", self.name, reference_file_type.upper())
                return "N/A"
            # crds fails in many ways (CrdsError, OSError, even AttributeError for a file absent from a
            # serverless cache); whichever it is, the user needs the type, values and context.
            raise _reference_error(self, input_file, reference_file_type, exc) from exc


def _type_unknown(exc):
    """True if a crds failure says the context has no rules for the reference type at all."""
    while exc is not None:
        if "Unknown reference type" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _flatten(items):
    """Return the items of a list whose elements may themselves be lists or tuples."""
    return [item for group in items for item in (group if isinstance(group, (list, tuple)) else [group])]


def check_detector(science, reference, reference_file_type):
    """Raise `ReferenceFileError` if a reference was made for another physical detector than the data.

    Parameters
    ----------
    science : TMTDataModel
        The data being calibrated.
    reference : TMTReferenceFileModel
        Its reference.
    reference_file_type : str
        For the message.
    """
    data_serial = science.meta.instrument.detector_serial
    reference_serial = reference.meta.instrument.detector_serial
    if data_serial and reference_serial and data_serial != reference_serial:
        raise ReferenceFileError(
            f"{science.meta.filename or type(science).__name__}: taken with detector {data_serial} (DETSERNO), "
            f"but the {reference_file_type} reference {reference.meta.filename or 'given'} describes detector "
            f"{reference_serial}; use references of this detector (override_{reference_file_type}, or a CRDS "
            "cache built for it), or simulate data with the cache's detector (simulate.CACHE_DETECTOR_SEED)"
        )


class TMTPipeline(_TMTMixin, Pipeline):
    """Base class of the liger_iris_pipeline pipelines (see `TMTStep`)."""

    input_model = None
    """Names of the `liger_iris_pipeline.datamodels` classes of the pipeline's input files, checked
    from their headers before references are fetched; None: its steps check what they open."""

    def finalize_result(self, result, reference_files_used):
        """Record provenance, and ``SKIPPED`` for each of the pipeline's steps that did not run."""
        super().finalize_result(result, reference_files_used)
        cal_step = getattr(getattr(result, "meta", None), "cal_step", None)
        if cal_step is None:
            return
        for alias in self.step_defs:
            key = getattr(self, alias).class_alias
            if key and getattr(cal_step, key, None) is None:
                setattr(cal_step, key, "SKIPPED")

    def _precache_references(self, input_file):
        """Fetch every step's references before the first step runs, one type at a time.

        stpipe's own prefetch tries to open override models as paths, and its single
        multi-type look-up cannot say which type failed; this one skips overrides (models or
        paths) and names the failing type.
        """
        try:
            configure_environment()
            parameters, observatory = self._get_crds_parameters(input_file)
        except (ValueError, TypeError, OSError):
            return  # not a model: each step looks up its own references when it runs
        if self.input_model and isinstance(input_file, (str, os.PathLike)):
            # Refused before any look-up: the references of another instrument mode may not exist.
            from ..lib.models import check_model_kind
            from ..lib.observation import is_ifs

            where = Path(input_file)
            if where.suffix.lower() == ".json":
                from ..associations.level3 import association_members

                where = association_members(where)[0]
            check_model_kind(parameters.get("meta.model_type"), is_ifs(parameters), self.input_model, self.name, where)
        for reference_file_type in sorted(set(self.reference_file_types)):
            if self.get_ref_override(reference_file_type) is not None:
                continue
            try:
                with _crds_lookup():
                    path = crds_client.get_reference_file(parameters, reference_file_type, observatory)
                crds_client.check_reference_open(path)
            except Exception as exc:  # the same failure modes as TMTStep.get_reference_file
                if _type_unknown(exc) and all(
                    reference_file_type in step.optional_reference_types
                    for step in self._steps()[1:]
                    if reference_file_type in step.reference_file_types
                ):
                    continue  # an older context without an optional type: its steps run without it
                raise _reference_error(self, input_file, reference_file_type, exc) from exc
