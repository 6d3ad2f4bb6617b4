"""Frames that a step only reads, read from their file a block of rows at a time.

A step that combines frames row block by row block (the background members of ``image2``) needs
neither whole frames in memory nor the fresh memory that reading them whole would take; at full
frame two background members are 0.75 GiB. `FrameFile` checks a file as `open` does (structure,
header cards, the arrays' dtypes and dimensions against the schema), reads its metadata from the
headers, and gives each image extension as a `RowReader`: ``frame.data[rows]`` reads those rows
from the file. The DATASUM and CHECKSUM of every HDU are verified from the bytes as they stream
through (`FrameFile.verify_sums`, after the last block), so the file is still read once.
"""

from pathlib import Path

import numpy as np

from .model_base import DataModelError, array_specs, check_fits_structure, hdu_dtype, header_values, raise_for_sums

__all__ = ["FrameFile", "RowReader", "ones_complement_sum"]

# FITS stores unsigned integers as signed ones offset by BZERO: flipping the sign bit converts.
_SIGN_BITS = {"uint16": np.uint16(0x8000), "uint32": np.uint32(0x80000000)}
_RAW_DTYPES = {8: np.dtype("u1"), 16: np.dtype(">i2"), 32: np.dtype(">i4"), 64: np.dtype(">i8"),
               -32: np.dtype(">f4"), -64: np.dtype(">f8")}  # fmt: skip


def ones_complement_sum(*pieces):
    """Return the FITS 32-bit ones'-complement sum of bytes given in pieces of whole 32-bit words.

    Parameters
    ----------
    *pieces : bytes-like or int
        Bytes (a multiple of 4 long), or sums already computed.

    Returns
    -------
    int
    """
    total = 0
    for piece in pieces:
        if isinstance(piece, int):
            total += piece
        else:
            total += int(np.frombuffer(piece, dtype=">u4").sum(dtype=np.uint64))
    while total >> 32:
        total = (total & 0xFFFFFFFF) + (total >> 32)
    return total


class _HDUSums:
    """The DATASUM and CHECKSUM of one HDU, checked against its bytes."""

    def __init__(self, index, name, header, info, header_bytes):
        self.index, self.name = index, name
        self.datasum = header.get("DATASUM")
        self.has_checksum = "CHECKSUM" in header
        self.header_sum = ones_complement_sum(header_bytes)
        self.data_offset, self.data_span = info["datLoc"], info["datSpan"]

    @property
    def checked(self):
        return self.datasum is not None or self.has_checksum

    def verify(self, datasum, path):
        datasum_ok = self.datasum is None or int(self.datasum) == datasum
        checksum_ok = not self.has_checksum or ones_complement_sum(self.header_sum, datasum) == 0xFFFFFFFF
        raise_for_sums(datasum_ok, checksum_ok, self.index, self.name, path)


class RowReader:
    """One image extension of a `FrameFile`, read from the file by blocks of rows.

    ``reader[rows]`` (a slice of rows, optionally followed by column indices) reads those rows;
    any other index, and ``numpy.asarray(reader)``, reads the whole array. Arrays come in native
    byte order with the schema's dtype.

    Attributes
    ----------
    name : str
        EXTNAME.
    shape : tuple of int
    dtype : numpy.dtype
    """

    def __init__(self, frame, sums, header):
        self.frame = frame
        self.name = sums.name
        self.shape = tuple(header[f"NAXIS{axis}"] for axis in range(header["NAXIS"], 0, -1))
        self.ndim = len(self.shape)
        self.dtype = np.dtype(hdu_dtype(header))
        self._raw_dtype = _RAW_DTYPES[header["BITPIX"]]
        self._sums = sums
        self._row_bytes = int(np.prod(self.shape[1:], dtype=np.int64)) * self._raw_dtype.itemsize
        self._datasum = 0
        self._next_row = 0  # the rows before it were summed, in order

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, key):
        rows, rest = (key[0], key[1:]) if isinstance(key, tuple) else (key, ())
        if isinstance(rows, slice) and rows.step in (None, 1):
            start, stop, _ = rows.indices(self.shape[0])
            block = self._read_rows(start, max(start, stop))
            return block[(slice(None), *rest)] if rest else block
        return np.asarray(self)[key]

    def __array__(self, dtype=None, copy=None):
        array = self._read_rows(0, self.shape[0])
        return array if dtype is None else array.astype(dtype, copy=False)

    def _read_rows(self, start, stop):
        """Read rows ``start:stop``; their bytes are summed when they continue the rows summed so far."""
        raw = np.empty((stop - start, *self.shape[1:]), dtype=self._raw_dtype)
        handle = self.frame._handle()
        handle.seek(self._sums.data_offset + start * self._row_bytes)
        if handle.readinto(raw) != raw.nbytes:
            raise DataModelError(f"{self.frame.path}: corrupt FITS file: extension {self.name} ends early")
        if start == self._next_row and raw.nbytes % 4 == 0:
            self._datasum = ones_complement_sum(self._datasum, raw)
            self._next_row = stop
        native = raw.byteswap(inplace=True).view(raw.dtype.newbyteorder("="))
        sign_bit = _SIGN_BITS.get(self.dtype.name)
        if sign_bit is not None and native.dtype.kind == "i":
            native = native.view(self.dtype)
            native ^= sign_bit
        return native

    def verify_sums(self):
        """Raise `DataModelError` unless the extension's DATASUM and CHECKSUM match its bytes.

        An extension not read whole, in order, is summed now from the file.
        """
        if not self._sums.checked:
            return
        if self._next_row < self.shape[0]:
            self._datasum = _data_sum(self.frame._handle(), self._sums)
            self._next_row = self.shape[0]
        self._sums.verify(self._datasum, self.frame.path)


def _data_sum(handle, sums):
    handle.seek(sums.data_offset)
    return ones_complement_sum(handle.read(sums.data_span))


class FrameFile:
    """A frame file checked as `open` checks it, with its image extensions read by rows.

    Parameters
    ----------
    path : str or os.PathLike
        A FITS file of ``model_class``.
    model_class : type
        The `TMTDataModel` subclass the file declares (``DATAMODL``).

    Attributes
    ----------
    path : Path
    header_model : TMTDataModel
        A ``model_class`` instance without arrays holding the metadata of the file's FITS keywords.
    meta : stdatamodels ObjectNode
        ``header_model.meta``.
    data, err, dq, var_poisson... : RowReader or None
        One per array of the schema; None when the file has no such extension.

    Raises
    ------
    DataModelError
        As `open`: not FITS, truncated, unparsable card, an array unlike the schema's.
    """

    def __init__(self, path, model_class):
        import warnings

        from astropy.io import fits
        from astropy.io.fits.verify import VerifyError, VerifyWarning
        from astropy.utils.exceptions import AstropyUserWarning

        self.path = Path(path)
        self._model_class = model_class
        self._file = None
        try:
            with warnings.catch_warnings(), fits.open(self.path, memmap=False, lazy_load_hdus=False) as hdulist:
                warnings.simplefilter("error", AstropyUserWarning)
                warnings.simplefilter("error", VerifyWarning)
                check_fits_structure(hdulist, model_class, self.path)
                values = header_values(hdulist, model_class)
                readers = self._readers(hdulist)
        except DataModelError:
            raise
        except (OSError, ValueError, VerifyError, AstropyUserWarning, VerifyWarning) as exc:
            raise DataModelError(f"{self.path}: not a readable FITS file ({' '.join(str(exc).split())})") from exc
        self.header_model = model_class()
        for key, value in values.items():
            self.header_model[key] = value
        self.header_model.meta.filename = values.get("meta.filename") or self.path.name
        self._readers = readers
        for attribute, _, _ in array_specs(model_class).values():
            setattr(self, attribute, readers.get(attribute))

    def _readers(self, hdulist):
        """Return ``{attribute: RowReader}`` of the image arrays; the other HDUs' sums go to ``_other_sums``."""
        specs = array_specs(self._model_class)
        readers, self._other_sums = {}, []
        with open(self.path, "rb") as handle:
            for index, hdu in enumerate(hdulist):
                info = hdu.fileinfo()
                handle.seek(info["hdrLoc"])
                name = hdu.header.get("EXTNAME", "PRIMARY" if index == 0 else "").upper()
                sums = _HDUSums(index, name, hdu.header, info, handle.read(info["datLoc"] - info["hdrLoc"]))
                if name in specs and hdu.header.get("NAXIS", 0) > 0:
                    readers[specs[name][0]] = RowReader(self, sums, hdu.header)
                elif sums.checked:
                    self._other_sums.append(sums)
        return readers

    @property
    def meta(self):
        return self.header_model.meta

    def get_primary_array_name(self):
        """Return the name of the primary array (``data``), as a model does."""
        return self.header_model.get_primary_array_name()

    def _handle(self):
        if self._file is None:
            self._file = open(self.path, "rb")  # noqa: SIM115 - closed by close()
        return self._file

    def verify_sums(self):
        """Raise `DataModelError` unless every extension's DATASUM and CHECKSUM match its bytes."""
        for reader in self._readers.values():
            reader.verify_sums()
        for sums in self._other_sums:
            sums.verify(_data_sum(self._handle(), sums), self.path)

    def load(self):
        """Return the whole frame as its model (`open`), for a use that needs every pixel at once."""
        from .open_model import open as open_model

        return open_model(self.path)

    def close(self):
        """Close the file."""
        if self._file is not None:
            self._file.close()
            self._file = None
        self.header_model.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
