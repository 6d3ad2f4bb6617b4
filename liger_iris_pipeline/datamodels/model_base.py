"""Base class of every TMT/IRIS data model and the checks of files on disk."""

import contextlib
import contextvars
import functools
import os
from pathlib import Path

import numpy as np
from asdf.exceptions import ValidationError
from stdatamodels import DataModel

from .integration import SCHEMA_URI_PREFIX


class DataModelError(ValueError):
    """A file or object cannot be read as one of this package's data models."""


# FITS (BITPIX, BZERO) -> numpy dtype name, for the integer and float images we write.
_FITS_IMAGE_DTYPES = {
    (8, 0): "uint8",
    (8, -128): "int8",
    (16, 0): "int16",
    (16, 32768): "uint16",
    (32, 0): "int32",
    (32, 2147483648): "uint32",
    (64, 0): "int64",
    (64, 9223372036854775808): "uint64",
    (-32, 0): "float32",
    (-64, 0): "float64",
}


def schema_uri(name):
    """Return the URI of one of the package's schemas (``name`` without ``.schema``)."""
    return f"{SCHEMA_URI_PREFIX}{name}.schema"


class TMTDataModel(DataModel):
    """Base class of the TMT/IRIS data models.

    Adds what CRDS and stpipe need (``crds_observatory``, ``get_crds_parameters``),
    validates metadata strictly (an invalid value raises instead of warning), and
    refuses FITS files whose arrays have the wrong dtype or dimensionality instead of
    casting them silently.
    """

    schema_url = schema_uri("tmt_core")
    crds_observatory = "tmt"
    default_arrays = ()
    """Arrays created with their schema default when the model is built from a shape or an array."""

    def __init__(self, init=None, strict_validation=True, **kwargs):
        path = None
        if isinstance(init, (str, os.PathLike)):
            path = Path(init)
            if not path.exists():
                raise FileNotFoundError(f"{path}: no such file")
            if path.suffix.lower() in (".fits", ".fit", ".fts"):
                # Read once, checked: stdatamodels builds the model from the verified HDUList.
                init = read_fits_file(path, type(self))
        try:
            super().__init__(init, strict_validation=strict_validation, **kwargs)
        except ValidationError as exc:
            if path is None:
                raise
            summary = " ".join(exc.message.splitlines()[:2]).replace("the following error occurred: ", "")
            raise DataModelError(f"{path}: invalid metadata: {summary}") from exc
        finally:
            if path is not None and hasattr(init, "close"):
                init.close()
        if isinstance(init, tuple) or hasattr(init, "dtype"):
            for name in self.default_arrays:
                if getattr(self, name, None) is None:
                    setattr(self, name, self.get_default(name))

    def native_array(self, name):
        """Return an array attribute in native byte order, byte-swapping it in place if needed.

        Arrays read from FITS are big-endian; C code (the ramp fitter) needs native ones. Swapping
        in place, once, costs no extra memory; arrays are left as read until a caller needs this.

        Parameters
        ----------
        name : str
            Attribute name (``data``, ``dq``...).

        Returns
        -------
        numpy.ndarray
        """
        array = getattr(self, name)
        if isinstance(array, np.ndarray) and not array.dtype.isnative:
            if array.flags.writeable:
                array.byteswap(inplace=True)
                array = array.view(array.dtype.newbyteorder("="))
            else:
                array = array.astype(array.dtype.newbyteorder("="))
            setattr(self, name, array)
        return array

    def get_crds_parameters(self):
        """Return the flat ``meta.*`` dictionary CRDS selects references with.

        Returns
        -------
        dict
            Scalar metadata keyed by dotted path (``meta.instrument.detector``...).
        """
        return {
            key: value
            for key, value in self.to_flat_dict(include_arrays=False).items()
            if key.startswith("meta.") and isinstance(value, (str, int, float, bool))
        }

    def save(self, path, dir_path=None, *args, **kwargs):
        """Write the model to a FITS or ASDF file, never leaving a partial file.

        The file is written under a temporary name and renamed when complete; during a
        pipeline run the rename waits for the whole run to succeed, and a name that is one of
        the run's inputs or references is refused (see `liger_iris_pipeline.lib.output`).

        Parameters
        ----------
        path : str, os.PathLike or callable
            Output file, or a function of ``meta.filename`` returning it.
        dir_path : str, optional
            Folder overriding the one in ``path``.
        *args, **kwargs
            Passed to the FITS or ASDF writer.

        Returns
        -------
        str
            The path written.
        """
        from ..lib.output import writing

        final = os.fspath(path(self.meta.filename) if callable(path) else path)
        if dir_path:
            final = os.path.join(dir_path, os.path.basename(final))
        with writing(final) as temporary:
            self._final_name = os.path.basename(final)
            try:
                super().save(temporary, *args, **kwargs)
            finally:
                del self._final_name
        return final

    def on_save(self, init):
        """Stamp file name, creation date and software version before writing."""
        from astropy.time import Time

        from .. import __version__

        super().on_save(init)
        final_name = getattr(self, "_final_name", None)
        if final_name:
            self.meta.filename = final_name
        self.meta.date = Time.now().isot
        self.meta.calibration_software_name = "liger_iris_pipeline"
        self.meta.calibration_software_version = __version__

    def to_fits(self, init, *args, **kwargs):
        """Write the model to a FITS file with CHECKSUM and DATASUM in every HDU.

        A library's scratch copy of a frame (`ModelLibrary.shelve`) is written without them: it lives
        for one run, and the sums would cost a pass over every array on each write and read.

        Parameters
        ----------
        init : str or os.PathLike
            Output file.
        *args, **kwargs
            Passed to `astropy.io.fits.HDUList.writeto`.
        """
        kwargs.setdefault("checksum", not getattr(self, "_scratch_copy", False))
        super().to_fits(init, *args, **kwargs)


class TMTReferenceFileModel(TMTDataModel):
    """Base class of the CRDS reference file models.

    They are written without stdatamodels' ``ASDF`` extension, which ``crds certify`` refuses:
    their FITS keywords and extensions hold everything the models read back.
    """

    schema_url = schema_uri("tmt_reference")

    def __init__(self, init=None, **kwargs):
        super().__init__(init, **kwargs)
        self._no_asdf_extension = True


@functools.cache
def schema_nodes(model_class):
    """Return ``(dotted path, node)`` for every node of a model class's schema that maps to FITS.

    The one walk of a schema (through ``allOf``/``anyOf``/``oneOf`` and ``properties``) behind the
    array checks, the header-only metadata and the documentation tables.

    Parameters
    ----------
    model_class : type
        A `TMTDataModel` subclass.

    Returns
    -------
    tuple of (str, dict)
        Nodes with a ``fits_hdu`` or ``fits_keyword`` annotation, in schema order.
    """
    from asdf.schema import load_schema

    nodes = []

    def walk(node, path):
        if isinstance(node, dict):
            if "fits_hdu" in node or "fits_keyword" in node:
                nodes.append((".".join(path), node))
            for key in ("allOf", "anyOf", "oneOf"):
                for sub in node.get(key, []):
                    walk(sub, path)
            for key, sub in node.get("properties", {}).items():
                walk(sub, [*path, key])

    walk(load_schema(model_class.schema_url, resolve_references=True), [])
    return tuple(nodes)


@functools.cache
def array_specs(model_class):
    """Return ``{fits_hdu: (attribute, datatype, ndim)}`` for the image arrays of a model class.

    Parameters
    ----------
    model_class : type
        A `TMTDataModel` subclass.

    Returns
    -------
    dict
        Only arrays with a scalar ``datatype`` (image HDUs); tables are left out.
    """
    return {
        node["fits_hdu"]: (path, node["datatype"], node.get("ndim"))
        for path, node in schema_nodes(model_class)
        if isinstance(node.get("datatype"), str) and "fits_keyword" not in node
    }


@functools.cache
def column_units(model_class):
    """Return ``{column name: unit}`` of the table columns a model class's schema gives a ``unit``.

    Parameters
    ----------
    model_class : type
        A `TMTDataModel` subclass.

    Returns
    -------
    dict
        Units as FITS writes them (``TUNITn``).
    """
    return {
        column["name"]: column["unit"]
        for _, node in schema_nodes(model_class)
        if isinstance(node.get("datatype"), list)
        for column in node["datatype"]
        if "unit" in column
    }


@functools.cache
def keyword_paths(model_class):
    """Return ``{(EXTNAME, keyword): "meta.path"}`` for every FITS keyword of a model class's schema.

    Parameters
    ----------
    model_class : type
        A `TMTDataModel` subclass.

    Returns
    -------
    dict
        ``EXTNAME`` is ``PRIMARY`` for primary-header keywords.
    """
    return {
        (node.get("fits_hdu", "PRIMARY"), node["fits_keyword"]): path
        for path, node in schema_nodes(model_class)
        if "fits_keyword" in node
    }


def header_metadata(path, model_class):
    """Return the flat ``meta.*`` dictionary of a FITS file from its headers, without reading arrays.

    What `TMTDataModel.get_crds_parameters` gives for the opened file, at the cost of reading the
    headers only: CRDS look-ups on a full-frame ramp need not load the ramp.

    Parameters
    ----------
    path : str or os.PathLike
        FITS file written by this package.
    model_class : type
        The class its DATAMODL names.

    Returns
    -------
    dict
    """
    import warnings

    from astropy.io import fits
    from astropy.utils.exceptions import AstropyUserWarning

    # Only headers are read here; a truncated data part is reported by the full read (read_fits_file).
    with warnings.catch_warnings(), fits.open(path, memmap=False) as hdulist:
        warnings.simplefilter("ignore", AstropyUserWarning)
        for index, hdu in enumerate(hdulist):
            _check_cards(hdu, index, path)
        return header_values(hdulist, model_class)


def header_values(hdulist, model_class):
    """Return the flat ``meta.*`` dictionary of an open FITS file's headers (see `header_metadata`)."""
    values = {}
    for (extname, keyword), meta_path in keyword_paths(model_class).items():
        if extname in hdulist and keyword in hdulist[extname].header:
            value = hdulist[extname].header[keyword]
            if isinstance(value, (str, int, float, bool)):
                values[meta_path] = value
    return values


def hdu_dtype(header):
    """Return the numpy dtype name a FITS image header declares (after BZERO scaling)."""
    bitpix = header.get("BITPIX")
    bzero = header.get("BZERO", 0)
    bscale = header.get("BSCALE", 1)
    if bscale != 1:
        return "float32" if bitpix in (8, 16) else "float64"
    return _FITS_IMAGE_DTYPES.get((bitpix, int(bzero) if float(bzero).is_integer() else bzero), "scaled")


_CHECKED_FILES_TRUSTED = contextvars.ContextVar("checked_files_trusted", default=False)


@contextlib.contextmanager
def reading_checked_files():
    """Within this context `read_fits_file` skips its checks: for files checked before and unchanged since.

    A `~liger_iris_pipeline.datamodels.library.ModelLibrary` reads each frame several times in a
    Level 3 run (once per step); the structure, card and sum checks of a 2048x2048 frame take
    about as long again as reading it.
    """
    token = _CHECKED_FILES_TRUSTED.set(True)
    try:
        yield
    finally:
        _CHECKED_FILES_TRUSTED.reset(token)


def read_fits_file(path, model_class):
    """Open a FITS file for a model class, checking it first; raise `DataModelError` naming the problem.

    Checked, in this order: the FITS structure (truncated or padded files), every header card
    (an unparsable card names its HDU and keyword), the dtype and dimensionality of the arrays
    against the model's schema (from BITPIX, BZERO and NAXIS), and the CHECKSUM and DATASUM of
    every HDU that has them. Within `reading_checked_files`, none of them.

    Parameters
    ----------
    path : Path
        The FITS file.
    model_class : type
        The `TMTDataModel` subclass about to read it.

    Returns
    -------
    astropy.io.fits.HDUList
        Opened without memory mapping, every HDU loaded and verified; the caller closes it.
    """
    import warnings

    from astropy.io import fits
    from astropy.io.fits.verify import VerifyError, VerifyWarning
    from astropy.utils.exceptions import AstropyUserWarning

    if _CHECKED_FILES_TRUSTED.get():
        hdulist = fits.open(path, memmap=False, lazy_load_hdus=False)
        for hdu in hdulist:
            for keyword in ("CHECKSUM", "DATASUM"):
                hdu.header.remove(keyword, ignore_missing=True)  # as below, for stdatamodels' header hash
        return hdulist
    hdulist = None
    try:
        # astropy only warns about truncated files, padding and bad cards; here each is an error,
        # raised once the file is open so that astropy closes what it opened.
        with warnings.catch_warnings(record=True) as complaints:
            warnings.simplefilter("always", AstropyUserWarning)
            warnings.simplefilter("always", VerifyWarning)
            hdulist = fits.open(path, memmap=False, lazy_load_hdus=False)
        complaints = [
            item.message for item in complaints if issubclass(item.category, (AstropyUserWarning, VerifyWarning))
        ]
        if complaints:
            raise complaints[0]
        with warnings.catch_warnings():
            warnings.simplefilter("error", AstropyUserWarning)
            warnings.simplefilter("error", VerifyWarning)
            check_fits_structure(hdulist, model_class, path)
            for index, hdu in enumerate(hdulist):
                _check_sums(hdu, index, path)
                # Verified, the sums go: stdatamodels trusts its ASDF tree only while the headers hash
                # as they did before writing, which was before the sums were added.
                for keyword in ("CHECKSUM", "DATASUM"):
                    hdu.header.remove(keyword, ignore_missing=True)
    except DataModelError:
        if hdulist is not None:
            hdulist.close()
        raise
    except (OSError, ValueError, VerifyError, AstropyUserWarning, VerifyWarning) as exc:
        if hdulist is not None:
            hdulist.close()
        raise DataModelError(f"{path}: not a readable FITS file ({_one_line(exc)})") from exc
    return hdulist


def check_fits_structure(hdulist, model_class, path):
    """Raise `DataModelError` for a truncated HDU, an unparsable card or an array unlike the schema's.

    Every check of `read_fits_file` but the sums, which need the data read.

    Parameters
    ----------
    hdulist : astropy.io.fits.HDUList
        The file, opened with every header read.
    model_class : type
        The `TMTDataModel` subclass about to read it.
    path : Path
        File name, for the messages.
    """
    file_size = Path(path).stat().st_size
    for index, hdu in enumerate(hdulist):
        info = hdu.fileinfo()
        if info["datLoc"] + info["datSpan"] > file_size:
            raise DataModelError(
                f"{path}: corrupt FITS file: HDU {index} ({hdu.name}) is truncated "
                f"(needs {info['datLoc'] + info['datSpan']} bytes, file has {file_size})"
            )
        _check_cards(hdu, index, path)
    check_fits_arrays(hdulist, model_class, path)


def _one_line(exc):
    """Return an astropy.io.fits complaint as one line, without its boilerplate."""
    text = " ".join(str(exc).split()).replace("Verification reported errors: ", "")
    for note in (" Note: astropy.io.fits uses zero-based indexing.", " (note: Astropy uses zero-based indexing)"):
        text = text.replace(note, "")
    return text


def _check_cards(hdu, index, path):
    """Raise `DataModelError` for the first header card of an HDU whose value does not parse."""
    from astropy.io.fits.verify import VerifyError, VerifyWarning

    for card in hdu.header.cards:
        try:
            card.verify("exception")
            card.value  # noqa: B018 - parsing the value is the check
        except (VerifyError, VerifyWarning, ValueError) as exc:
            image = card.image.rstrip()
            raise DataModelError(
                f"{path}: unparsable header card in HDU {index} ({hdu.name}): {image!r} ({_one_line(exc)})"
            ) from exc


def _check_sums(hdu, index, path):
    """Raise `DataModelError` if an HDU's CHECKSUM or DATASUM does not match its content."""
    import warnings

    from astropy.utils.exceptions import AstropyUserWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyUserWarning)  # astropy's warning becomes the error below
        datasum_ok = "DATASUM" not in hdu.header or hdu.verify_datasum() != 0
        checksum_ok = "CHECKSUM" not in hdu.header or hdu.verify_checksum() != 0
    raise_for_sums(datasum_ok, checksum_ok, index, hdu.name, path)


def raise_for_sums(datasum_ok, checksum_ok, index, name, path):
    """Raise the `DataModelError` that says which sum of an HDU does not match (nothing if both do)."""
    if not datasum_ok:
        raise DataModelError(
            f"{path}: corrupt FITS file: DATASUM of HDU {index} ({name}) does not match: "
            "its data changed after the file was written"
        )
    if not checksum_ok:
        raise DataModelError(
            f"{path}: corrupt FITS file: CHECKSUM of HDU {index} ({name}) does not match: its header changed "
            "after the file was written; if it was edited on purpose, update the checksums "
            "(astropy: fits.open(file, mode='update', checksum=True))"
        )


@functools.cache
def _primary_array_name(model_class):
    """The primary array of a model class (``data``...); cached: building an empty model parses its schema."""
    return model_class().get_primary_array_name()


def check_fits_arrays(hdulist, model_class, path):
    """Raise `DataModelError` if an array HDU does not match the model's schema.

    Parameters
    ----------
    hdulist : astropy.io.fits.HDUList
        The opened file.
    model_class : type
        The `TMTDataModel` subclass about to read it.
    path : str or Path
        File name, for the message.
    """
    specs = array_specs(model_class)
    primary = _primary_array_name(model_class)
    primary_hdu = next((hdu for hdu, spec in specs.items() if spec[0] == primary), None)
    if primary_hdu is not None and primary_hdu not in hdulist:
        raise DataModelError(f"{path}: a {model_class.__name__} needs a {primary_hdu} extension; none found")
    for hdu in hdulist[1:]:
        name = hdu.header.get("EXTNAME", "").upper()
        if name not in specs or hdu.header.get("XTENSION", "IMAGE") != "IMAGE":
            continue
        attribute, datatype, ndim = specs[name]
        naxis = hdu.header.get("NAXIS", 0)
        if naxis == 0:
            continue
        if ndim is not None and naxis != ndim:
            raise DataModelError(
                f"{path}: extension {name} of a {model_class.__name__} must have {ndim} dimensions, found {naxis}"
            )
        found = hdu_dtype(hdu.header)
        if found != np.dtype(datatype).name:
            raise DataModelError(
                f"{path}: extension {name} of a {model_class.__name__} must be {datatype}, "
                f"found {found} (BITPIX={hdu.header.get('BITPIX')}, BZERO={hdu.header.get('BZERO', 0)})"
            )
