"""``open()``: read any file of this package as the right model class."""

import os
from pathlib import Path

from . import models
from .model_base import DataModelError, TMTDataModel

MODEL_CLASSES = {name: getattr(models, name) for name in models.__all__}
"""DATAMODL value -> model class."""


def open(init, **kwargs):  # noqa: A001 - mirrors stdatamodels/jwst ``datamodels.open``
    """Open a file or model as the data model class it declares.

    Parameters
    ----------
    init : str, os.PathLike, astropy.io.fits.HDUList or TMTDataModel
        A FITS or ASDF file written by this package, or a model (returned as a
        shallow copy of the same class).
    **kwargs
        Passed to the model class.

    Returns
    -------
    TMTDataModel
        An instance of the class named by the file's ``DATAMODL``.

    Raises
    ------
    FileNotFoundError
        The path does not exist.
    DataModelError
        The file is not FITS/ASDF, is not one of ours, names an unknown model,
        or has arrays of the wrong dtype or dimensionality.
    """
    if isinstance(init, TMTDataModel):
        return init.__class__(init, **kwargs)
    if isinstance(init, (str, os.PathLike)):
        path = Path(init)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such file")
        model_type = declared_model_type(path)
    elif hasattr(init, "info") and hasattr(init, "__getitem__"):  # an HDUList
        path = getattr(init, "filename", lambda: None)() or "<HDUList>"
        model_type = init[0].header.get("DATAMODL")
        if model_type is None:
            raise DataModelError(f"{path}: no DATAMODL keyword in the primary header")
    else:
        raise DataModelError(f"cannot open {type(init).__name__} {init!r} as a data model")
    try:
        model_class = MODEL_CLASSES[model_type]
    except KeyError:
        raise DataModelError(
            f"{path}: unknown DATAMODL {model_type!r}; known models: {', '.join(MODEL_CLASSES)}"
        ) from None
    return model_class(init, **kwargs)


def declared_model_type(path):
    """Return the DATAMODL a FITS or ASDF file declares, or raise `DataModelError`."""
    with path.open("rb") as stream:
        magic = stream.read(10)
    if magic.startswith(b"#ASDF"):
        import asdf

        try:
            with asdf.open(path, lazy_load=True, memmap=False) as af:
                model_type = af.tree.get("meta", {}).get("model_type")
        except Exception as exc:
            raise DataModelError(f"{path}: not a readable ASDF file ({exc})") from exc
        if model_type is None:
            raise DataModelError(f"{path}: ASDF file has no meta.model_type; not a liger_iris_pipeline product")
        return model_type
    if not magic.startswith(b"SIMPLE  ="):
        raise DataModelError(f"{path}: neither a FITS nor an ASDF file")
    import warnings

    from astropy.io import fits
    from astropy.utils.exceptions import AstropyUserWarning

    try:
        # Only the primary header is read here; a damaged data part is reported by the full read.
        with warnings.catch_warnings(), fits.open(path, memmap=False) as hdulist:
            warnings.simplefilter("ignore", AstropyUserWarning)
            header = hdulist[0].header
    except Exception as exc:
        raise DataModelError(f"{path}: not a readable FITS file ({exc})") from exc
    model_type = header.get("DATAMODL")
    if model_type is None:
        raise DataModelError(f"{path}: no DATAMODL keyword in the primary header; not a liger_iris_pipeline product")
    return model_type
