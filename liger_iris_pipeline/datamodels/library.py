"""``ModelLibrary``: the frames of a Level 3 association, borrowed one at a time.

A subclass of stpipe's `~stpipe.library.AbstractModelLibrary`, as jwst's and romancal's. With
``on_disk=True`` a frame lives in a temporary file between uses, so a step that iterates over the
library holds one frame in memory at a time::

    library = ModelLibrary("mosaic_asn.json", on_disk=True)
    with library:
        for index, model in enumerate(library):
            ...  # change the frame
            library.shelve(model, index)  # written back to the temporary file

What the steps derive from a frame and need again (its summary, its pixel map on the mosaic grid)
is kept by an on-disk library (`frame_fact`, `scratch_array`), so that a step does not read a
frame only to recompute it.

Group ids come from the exposure metadata (program, observation, exposure number), so that the
frames of one exposure (the detectors read out together) share one id: tweakreg aligns them as one
rigid group.
"""

import copy
import os
from pathlib import Path

from stpipe.library import AbstractModelLibrary, NoGroupID

from .model_base import DataModelError

__all__ = ["ModelLibrary", "as_library", "group_id", "library_outputs"]


def group_id(program, observation, exposure_number):
    """Return the group id of an exposure, or raise `~stpipe.library.NoGroupID` when a part is missing.

    Parameters
    ----------
    program, observation : str or None
        ``PROGID`` and ``OBS_ID``.
    exposure_number : int or None
        ``EXPOSURE``.

    Returns
    -------
    str
        ``"<program>_<observation>_<exposure number>"``.
    """
    if program is None or observation is None or exposure_number is None:
        raise NoGroupID("program, observation or exposure number missing")
    return f"{program}_{observation}_{int(exposure_number):05d}"


class ModelLibrary(AbstractModelLibrary):
    """The frames of a Level 3 association (or of a list of files or models).

    Parameters
    ----------
    init : str, os.PathLike, dict or list
        A Level 3 association (JSON file or its dictionary), or a list of frame files or models.
        A list of files is turned into an association in memory, so that ``on_disk`` works with
        it too (stpipe accepts ``on_disk`` only for associations).
    on_disk : bool
        Keep the frames in temporary files between borrows (one in memory at a time).
    temp_directory : str or os.PathLike, optional
        Where the temporary files go (default: a new temporary directory in the current one).
    **kwargs
        Passed to `~stpipe.library.AbstractModelLibrary` (``asn_exptypes``, ``asn_n_members``).
    """

    def __init__(self, init, on_disk=False, temp_directory=None, **kwargs):
        if not isinstance(init, (str, os.PathLike, dict, ModelLibrary)) and _all_paths(init):
            init = _association_from_files(init)
        self._validated = {}  # member file -> its _file_stamp when it was read with validation
        super().__init__(init, on_disk=on_disk, temp_directory=temp_directory, **kwargs)
        self._facts = {}  # index -> {key: value} of frame_fact, for an on-disk library
        self._fact_functions = {}
        self._pending = {}  # index -> [update, ...] of update_later, for an on-disk library

    def close(self):
        """Delete the temporary files of an on-disk library (also done when the library is garbage collected)."""
        temp_dir = getattr(self, "_temp_dir", None)
        if temp_dir is not None:
            temp_dir.cleanup()

    @property
    def crds_observatory(self):
        """The CRDS observatory of the frames: ``"tmt"``."""
        return "tmt"

    @property
    def on_disk(self):
        """Whether the frames are kept in temporary files between borrows."""
        return self._on_disk

    def shelve(self, model, index=None, modify=True):
        """Return a borrowed frame to the library (see `~stpipe.library.AbstractModelLibrary.shelve`).

        An on-disk library's temporary file is written at once, not staged as a product of the
        pipeline run in progress, and without FITS checksums (a scratch copy for this run): the
        next borrow reads it back.
        """
        from ..lib.output import outside_transaction

        if index is None:
            index = self._ledger.get(model)
        model._scratch_copy = True
        try:
            with outside_transaction():
                super().shelve(model, index, modify)
        finally:
            del model._scratch_copy
        if modify and self._on_disk:
            self._facts[index] = self._compute_facts(model)
            self._pending.pop(index, None)  # applied at the borrow, now in the temporary file

    def borrow(self, index):
        """Borrow a frame (see `~stpipe.library.AbstractModelLibrary.borrow`), with its `update_later` changes."""
        model = super().borrow(index)
        for update in self._pending.get(index, ()):
            update(model)
        if self._on_disk and self._fact_functions and index not in self._facts:
            self._facts[index] = self._compute_facts(model)
        return model

    def update_later(self, index, update, keeps_facts=False):
        """Change a frame with ``update(model)`` without reading and writing it now.

        For an on-disk library a step that changes only a frame's metadata (skymatch's sky level,
        tweakreg's WCS) would read and write every frame for it: instead the change is applied to
        the frame at each borrow until a borrow shelved modified writes it to the temporary file.
        ``update`` must give the same result at each call and must not log. An in-memory library
        applies it at once. The library must be open.

        Parameters
        ----------
        index : int
            The frame.
        update : callable
            ``update(model)``, changing the model in place.
        keeps_facts : bool
            The update changes nothing a `frame_fact` is computed from (a sky level; not a WCS):
            the kept facts stay (else they are computed again at the next borrow).
        """
        if not self._on_disk:
            model = self.borrow(index)
            try:
                update(model)
            finally:
                self.shelve(model, index)
            return
        self._pending.setdefault(index, []).append(update)
        if not keeps_facts:
            self._facts.pop(index, None)  # recomputed at the next borrow

    def update_arrays_later(self, index, arrays, update=None):
        """Replace arrays of a frame (and apply ``update``) without writing the whole frame now.

        For an on-disk library the arrays go to the library's temporary folder (one ``.npy`` file
        each) and are set at each borrow (`update_later`): a step that changes only DQ
        (outlier_detection) writes a few percent of the frame instead of all its arrays. The
        frame's facts stay (its summary depends on none of its arrays but SCI's shape). An
        in-memory library sets them at once. The frame must not be borrowed.

        Parameters
        ----------
        index : int
            The frame.
        arrays : dict
            ``{attribute: numpy.ndarray}``, e.g. ``{"dq": dq}``.
        update : callable, optional
            ``update(model)``, a metadata change applied with them (same rules as `update_later`).
        """
        import numpy as np

        if self._on_disk:
            folder = self._temp_path / "arrays"
            folder.mkdir(parents=True, exist_ok=True)
            paths = {}
            for name, array in arrays.items():
                # One file per frame and attribute: a later replacement overwrites it, and the pending
                # updates that read it then all give the latest values, as they must.
                paths[name] = folder / f"{index}-set-{name}.npy"
                np.save(paths[name], array)
            arrays = paths
        self.update_later(index, _ArrayUpdate(arrays, update), keeps_facts=True)

    def _compute_facts(self, model):
        """The `frame_fact` values of a frame being written back, from the frame in hand."""
        facts = {}
        for key, compute in self._fact_functions.items():
            try:
                facts[key] = compute(model)
            except Exception:  # noqa: BLE001 - raised again when the fact is asked for
                continue
        return facts

    def keep_fact(self, key, compute):
        """Compute the `frame_fact` ``key`` at every borrow of a frame that lacks it (on-disk library).

        So that the steps' own reads provide it: e.g. ``image3`` checks the frames' overlaps with
        summaries taken while tweakreg and skymatch read the frames, without a read of its own.
        """
        self._fact_functions[key] = compute

    def frame_fact(self, index, key, compute):
        """Return ``compute(frame)`` for a frame of the library (which must be open).

        An on-disk library keeps the value (something small: a frame's summary) and recomputes it
        from the frame whenever the frame is shelved modified, so that later steps need not read
        the frame again for it. An in-memory library computes it at each call (no read to save).

        Parameters
        ----------
        index : int
            The frame.
        key : str
            The name of the fact; one ``compute`` per name.
        compute : callable
            ``compute(model) -> value``.

        Returns
        -------
        object
            A copy of the kept value (callers may change it).
        """
        if self._on_disk:
            self._fact_functions[key] = compute
            known = self._facts.get(index, {})
            if key in known:
                return copy.deepcopy(known[key])
        model = self.borrow(index)
        try:
            value = compute(model)
        finally:
            self.shelve(model, index, modify=False)
        if self._on_disk:
            self._facts.setdefault(index, {})[key] = copy.deepcopy(value)
        return value

    def scratch_array(self, index, kind, key, compute):
        """Return an array derived from a frame, computed once and kept in the library's temporary folder.

        Only for an on-disk library (an in-memory one computes it at each call): the array is
        saved beside the frame's temporary copy and read back (a fresh array) while ``key`` is
        the same. The key must identify everything the array depends on (e.g. a fingerprint of
        the frame's WCS and of the output grid); a new key replaces the frame's array of this kind.

        Parameters
        ----------
        index : int
            The frame.
        kind : str
            What the array is (part of the file name: letters, digits, ``_``).
        key : str
            Identifies the array's inputs.
        compute : callable
            ``compute() -> numpy.ndarray``.

        Returns
        -------
        numpy.ndarray
        """
        import hashlib

        import numpy as np

        if not self._on_disk:
            return compute()
        folder = self._temp_path / "arrays"
        path = folder / f"{index}-{kind}-{hashlib.sha1(key.encode()).hexdigest()}.npy"
        if path.is_file():
            return np.load(path)
        value = compute()
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob(f"{index}-{kind}-*.npy"):
            old.unlink()
        np.save(path, value)
        return value

    def finalize_result(self, step, reference_files_used):
        """Let the step record its metadata in every frame (stpipe's hook), unless it records nothing.

        A TMT step records only the references it used (`TMTStep.finalize_result`); the Level 3
        steps use none, and an on-disk library would read and write every frame for nothing.
        """
        from ..stpipe import TMTStep

        if not reference_files_used and type(step).finalize_result is TMTStep.finalize_result:
            return
        super().finalize_result(step, reference_files_used)

    def _datamodels_open(self, filename, **kwargs):
        from .open_model import open as open_model

        # A temporary copy this library wrote (asdf validated the tree when writing it), or a member
        # read, checked and validated before and unchanged since (a step reads each frame again):
        # reading it without the file's checks and the tree's validation takes a third of the time.
        stamp = _file_stamp(filename)
        validated = stamp is not None and self._validated.get(filename) == stamp
        if self._on_disk and (filename in self._temp_filenames.values() or validated):
            import asdf

            from .model_base import reading_checked_files

            with asdf.config_context() as config, reading_checked_files():
                config.validate_on_read = False
                return open_model(filename, **kwargs)
        model = open_model(filename, **kwargs)
        self._validated[filename] = stamp
        return model

    @classmethod
    def _load_asn(cls, filename):
        from ..associations.level3 import read_level3_asn

        return read_level3_asn(filename)

    def _filename_to_group_id(self, filename):
        """Read the group id from a frame's primary header (or ASDF tree) without opening it as a model."""
        path = Path(filename)
        if not path.is_file():
            raise DataModelError(f"{path}: no such file (association member)")
        if path.suffix.lower() == ".asdf":
            import asdf

            with asdf.open(path, lazy_load=True, memmap=False) as af:
                meta = af.tree.get("meta", {})
                return group_id(
                    meta.get("program", {}).get("id"),
                    meta.get("observation", {}).get("observation_id"),
                    meta.get("observation", {}).get("exposure_number"),
                )
        from astropy.io import fits

        header = fits.getheader(path, 0)
        return group_id(header.get("PROGID"), header.get("OBS_ID"), header.get("EXPOSURE"))

    def _model_to_group_id(self, model):
        meta = model.meta
        return group_id(meta.program.id, meta.observation.observation_id, meta.observation.exposure_number)

    def _model_to_exptype(self, model):
        return "science"

    def _assign_member_to_model(self, model, member):
        """Record the member's group id and the association's name in the frame (``meta.group_id``, ``meta.asn``)."""
        model.meta.group_id = member["group_id"]
        if "table_name" in self._asn:
            model.meta.asn.table_name = self._asn["table_name"]
        if "asn_pool" in self._asn:
            model.meta.asn.pool_name = self._asn["asn_pool"]

    def product_name(self):
        """Return the name of the association's product (the base of ``<product>_i2d.fits``), or None."""
        return self._asn["products"][0].get("name")

    def member_filenames(self):
        """Return the frame files of the members, resolved against the association's directory."""
        return [self._member_to_filename(member) for member in self._members]


class _ArrayUpdate:
    """`ModelLibrary.update_arrays_later`'s update: set arrays (in memory or ``.npy`` files), then ``update``."""

    def __init__(self, arrays, update=None):
        self.arrays = arrays
        self.update = update

    def __call__(self, model):
        import numpy as np

        for name, array in self.arrays.items():
            setattr(model, name, np.load(array) if isinstance(array, Path) else array)
        if self.update is not None:
            self.update(model)


def _file_stamp(filename):
    """A file's size and modification time (None when it cannot be read): whether it changed."""
    try:
        status = os.stat(filename)
    except (OSError, TypeError):
        return None
    return (status.st_size, status.st_mtime_ns)


def as_library(init, on_disk=False):
    """Return a step's input as a `ModelLibrary`.

    Parameters
    ----------
    init : ModelLibrary, str, os.PathLike, dict or list
        A library (returned as it is), a Level 3 association, or a list of frame files or models.
    on_disk : bool
        For a new library: keep its frames in temporary files (not possible for a list of models).

    Returns
    -------
    ModelLibrary
    """
    if isinstance(init, ModelLibrary):
        return init
    from .model_base import TMTDataModel

    if isinstance(init, TMTDataModel):
        init = [init]
    return ModelLibrary(init, on_disk=on_disk and not _has_models(init))


def _has_models(init):
    from .model_base import TMTDataModel

    return isinstance(init, (list, tuple)) and any(isinstance(item, TMTDataModel) for item in init)


def _all_paths(items):
    try:
        items = list(items)
    except TypeError:
        return False
    return bool(items) and all(isinstance(item, (str, os.PathLike)) for item in items)


def _association_from_files(paths):
    """A Level 3 association (dictionary) of frame files, member names absolute."""
    members = [{"expname": str(Path(path).resolve()), "exptype": "science"} for path in paths]
    stem = Path(paths[0]).name.split(".")[0]
    name = stem.rsplit("_", 1)[0] if "_" in stem else stem
    return {"asn_type": "image3", "asn_pool": "files", "products": [{"name": name, "members": members}]}


def library_outputs(step, step_input, suffix, per_frame):
    """Return the final names of the products a Level 3 step saves for a library or list input.

    Parameters
    ----------
    step : TMTStep
        The step (its ``output_dir`` and ``output_file``).
    step_input : ModelLibrary, str or list
        The step's input.
    suffix : str
        The product's suffix.
    per_frame : bool
        One product per frame (``crf``) instead of one for the association (``i2d``).

    Returns
    -------
    list of str
    """
    if step.output_file and not per_frame:
        return [step.make_output_path(basepath=step.output_file, suffix=suffix)]
    library = step_input if isinstance(step_input, ModelLibrary) else None
    if library is None:
        return []  # made into a library by process(); names checked when saved
    try:
        names = library.member_filenames()
        product = library.product_name()
    except (AttributeError, KeyError, IndexError, TypeError):
        return []
    bases = [os.path.basename(name) for name in names] if per_frame else [f"{product}.fits"]
    return [step.make_output_path(basepath=base, suffix=suffix) for base in bases]
