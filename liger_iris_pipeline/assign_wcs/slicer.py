"""WCS of a slicer IFS frame from its slice geometry and wavelength solution, without stpipe.

The convention is ``docs/ifs_design.rst``'s: slice ``i`` covers rows ``YSTART <= y < YSTOP``; at
position ``s`` along it (spaxels from its left edge) it lies at ``x = x_left(y) + s * SPAXPIX``,
``x_left(y) = polyval(y, TRACE)``; the wavelength is ``polyval2d(s, y, COEFFS)`` (vacuum microns).
Slice ``i`` is row ``i`` of the spaxel grid and ``s`` its column (spaxel ``k`` centred on
``s = k + 0.5``), whose TAN WCS is the frame's ``meta.wcsinfo``.

The frame's gwcs goes ``detector`` (0-based x, y) -> ``slicer`` (slice, s, wavelength) -> ``world``
(RA, Dec, wavelength), as jwst's IFU WCS does through its slicer frame: the first transform is a
`gwcs.selector.RegionsSelector` whose regions are the slices (one astropy compound model each, a
label per pixel), so that the whole WCS is made of serialisable astropy and gwcs models.
"""

from dataclasses import dataclass

import numpy as np

__all__ = [
    "SlicerGeometry",
    "assign_slicer_wcs",
    "check_slicer_references",
    "slice_boxes",
    "slice_label_map",
    "slice_transform",
    "slicer_gwcs",
    "slicer_transforms",
]


@dataclass(frozen=True)
class SlicerGeometry:
    """The slicer's geometry and wavelength solution, as the ``slicegeo`` and ``wavecal`` references give them.

    Attributes
    ----------
    ystart, ystop : numpy.ndarray
        int (n_slices,) rows of each slice (``ystart <= y < ystop``).
    traces : numpy.ndarray
        float64 (n_slices, n) left-edge polynomials ``x_left(y)`` (numpy order).
    solutions : numpy.ndarray
        float64 (n_slices, 3, 3) wavelength solutions ``lambda(s, y)`` (microns).
    n_spaxels : int
        Spaxels along a slice.
    spaxel_pixels : float
        Detector columns per spaxel.
    """

    ystart: np.ndarray
    ystop: np.ndarray
    traces: np.ndarray
    solutions: np.ndarray
    n_spaxels: int
    spaxel_pixels: float

    @property
    def n_slices(self):
        """Slices (rows of the spaxel grid)."""
        return len(self.ystart)

    @classmethod
    def from_references(cls, slicegeo, wavecal):
        """Return the geometry of ``slicegeo`` and ``wavecal`` references (`TMTSliceGeometryModel`, `TMTWavecalModel`).

        Raises
        ------
        ValueError
            The two references do not describe the same slices.
        """
        slices = np.sort(np.asarray(slicegeo.slices), order="SLICE")
        solutions = np.sort(np.asarray(wavecal.solutions), order="SLICE")
        if not np.array_equal(slices["SLICE"], solutions["SLICE"]) or not np.array_equal(
            slices["SLICE"], np.arange(len(slices))
        ):
            raise ValueError(
                f"the slicegeo reference has slices {list(slices['SLICE'])}, the wavecal reference "
                f"{list(solutions['SLICE'])}: both must list slices 0..n-1"
            )
        geometry = slicegeo.meta.slice_geometry
        return cls(
            ystart=np.asarray(slices["YSTART"], dtype=np.int64),
            ystop=np.asarray(slices["YSTOP"], dtype=np.int64),
            traces=np.asarray(slices["TRACE"], dtype=np.float64),
            solutions=np.asarray(solutions["COEFFS"], dtype=np.float64),
            n_spaxels=int(geometry.n_spaxels),
            spaxel_pixels=float(geometry.spaxel_pixels),
        )


def slice_transform(geometry, index):
    """Return the astropy model of one slice: detector ``(x, y)`` -> ``(slice, s, wavelength)``.

    Parameters
    ----------
    geometry : SlicerGeometry
        The slicer.
    index : int
        The slice.

    Returns
    -------
    astropy.modeling.Model
        Two inputs, three outputs; ``s = (x - x_left(y)) / SPAXPIX``, wavelength ``polyval2d(s, y)``.
    """
    from astropy.modeling import models

    trace = geometry.traces[index]
    x_left = models.Polynomial1D(len(trace) - 1, **{f"c{k}": value for k, value in enumerate(trace)})
    along = (models.Mapping((0,), n_inputs=2) - (models.Mapping((1,), n_inputs=2) | x_left)) | models.Scale(
        1.0 / geometry.spaxel_pixels
    )
    solution = geometry.solutions[index]
    na, nb = solution.shape
    wavelength = models.Polynomial2D(
        na + nb - 2, **{f"c{a}_{b}": solution[a, b] for a in range(na) for b in range(nb) if solution[a, b]}
    )
    constant = models.Const1D(float(index))
    return (
        models.Mapping((0, 1, 0, 1))
        | along & models.Mapping((1,), n_inputs=2)
        | models.Mapping((0, 0, 0, 1))
        | constant & models.Identity(1) & wavelength
    )


def slice_label_map(geometry, shape):
    """Return the slice of every detector pixel: ``slice + 1`` where the pixel centre is on a slice, else 0.

    Parameters
    ----------
    geometry : SlicerGeometry
        The slicer.
    shape : tuple of int
        ``(ny, nx)`` of the frame.

    Returns
    -------
    numpy.ndarray
        int32 ``shape``.
    """
    labels = np.zeros(shape, dtype=np.int32)
    width = geometry.n_spaxels * geometry.spaxel_pixels
    for index in range(geometry.n_slices):
        rows = np.arange(max(geometry.ystart[index], 0), min(geometry.ystop[index], shape[0]))
        if rows.size == 0:
            continue
        left = np.polynomial.polynomial.polyval(rows.astype(np.float64), geometry.traces[index])
        # Only the columns the slice can reach: a full-frame row per slice would cost 88 x 16 M tests.
        first = max(int(np.floor(left.min())), 0)
        stop = min(int(np.ceil(left.max() + width)) + 1, shape[1])
        if stop <= first:
            continue
        offset = np.arange(first, stop, dtype=np.float64)[None, :] - left[:, None]
        inside = (offset >= 0.0) & (offset < width)
        labels[rows[0] : rows[-1] + 1, first:stop][inside] = index + 1
    return labels


def slice_boxes(labels):
    """Yield ``(label, (row slice, column slice))`` of every slice present in a label map (one pass, scipy).

    Parameters
    ----------
    labels : numpy.ndarray
        `slice_label_map` (slice + 1, 0 off the slices).
    """
    from scipy import ndimage

    for index, box in enumerate(ndimage.find_objects(labels)):
        if box is not None:
            yield index + 1, box


def slicer_transforms(wcs):
    """Return the label map and ``{label: slice model}`` of a frame's slicer gwcs (`slicer_gwcs`).

    Parameters
    ----------
    wcs : gwcs.WCS
        The frame's ``meta.wcs``.

    Returns
    -------
    tuple
        ``(labels, transforms)``: int32 ``(ny, nx)`` (0 off the slices), and per label the model
        ``(x, y) -> (slice, s, wavelength)`` of `slice_transform`.

    Raises
    ------
    ValueError
        The gwcs has no ``slicer`` frame (not a slicer IFS WCS).
    """
    if "slicer" not in wcs.available_frames:
        raise ValueError(f"the WCS has frames {wcs.available_frames}, not the slicer IFS's (detector, slicer, world)")
    selector = wcs.get_transform("detector", "slicer")
    return np.asarray(selector.label_mapper.mapper), dict(selector.selector)


def slicer_gwcs(geometry, wcsinfo, shape):
    """Return the gwcs of a slicer frame: ``detector`` -> ``slicer`` -> ``world``.

    Parameters
    ----------
    geometry : SlicerGeometry
        Slice geometry and wavelength solution.
    wcsinfo : dict
        The frame's complete ``meta.wcsinfo``: the TAN WCS of its spaxel grid (x along the slices,
        y the slice), as the simulator and the telescope pointing give it.
    shape : tuple of int
        ``(ny, nx)`` of the frame.

    Returns
    -------
    gwcs.WCS
        ``detector`` (x, y) -> ``slicer`` (slice, s, wavelength in um) -> ``world`` (RA, Dec in deg,
        wavelength in um); NaN off the slices.
    """
    from astropy import units as u
    from astropy.modeling import models
    from gwcs import coordinate_frames as cf
    from gwcs import selector, wcs

    from ..cube_build.cube_wcs import world_frame
    from .imaging import make_gwcs

    labels = slice_label_map(geometry, shape)
    regions = {index + 1: slice_transform(geometry, index) for index in range(geometry.n_slices)}
    to_slicer = selector.RegionsSelector(
        inputs=("x", "y"),
        outputs=("slice", "s", "wavelength"),
        selector=regions,
        label_mapper=selector.LabelMapperArray(labels),
        undefined_transform_value=np.nan,
    )
    celestial = make_gwcs(wcsinfo, (geometry.n_slices, geometry.n_spaxels))
    # Spaxel k is centred on s = k + 0.5, the spaxel grid's pixel k.
    to_world = (
        models.Mapping((1, 0, 2))
        | (models.Shift(-0.5) & models.Identity(2))
        | celestial.forward_transform & models.Identity(1)
    )
    detector = cf.Frame2D(name="detector", axes_order=(0, 1), unit=(u.pix, u.pix))
    slicer = cf.CoordinateFrame(
        naxes=3,
        axes_type=("SPATIAL", "SPATIAL", "SPECTRAL"),
        axes_order=(0, 1, 2),
        axes_names=("slice", "s", "wavelength"),
        unit=(u.pix, u.pix, u.um),
        name="slicer",
    )
    world = world_frame(celestial.output_frame.reference_frame)
    result = wcs.WCS([(detector, to_slicer), (slicer, to_world), (world, None)])
    result.bounding_box = ((-0.5, shape[1] - 0.5), (-0.5, shape[0] - 0.5))
    return result


def check_slicer_references(model, slicegeo, wavecal):
    """Raise `ValueError` if the references are not of the frame's IFS mode, spaxel scale and filter.

    Parameters
    ----------
    model : IRISIFSImageModel
        The frame.
    slicegeo, wavecal : TMTSliceGeometryModel, TMTWavecalModel
        Its references.

    Raises
    ------
    ValueError
        One line naming the frame, the reference and the values that differ.
    """
    from ..lib.models import file_label

    instrument = model.meta.instrument
    if instrument.ifs_mode not in (None, "SLICER"):
        raise ValueError(f"{file_label(model)}: IFSMODE = {instrument.ifs_mode!r}: the slicer WCS needs a SLICER frame")
    for kind, reference in (("slicegeo", slicegeo), ("wavecal", wavecal)):
        other = reference.meta.instrument
        differences = [
            f"{keyword} {mine!r} (reference {theirs!r})"
            for keyword, mine, theirs in (
                ("IFSMODE", instrument.ifs_mode, other.ifs_mode),
                ("SPAXSCL", instrument.spaxel_scale, other.spaxel_scale),
                (
                    "FILTER",
                    instrument.filter if kind == "wavecal" else None,
                    other.filter if kind == "wavecal" else None,
                ),
            )
            if mine is not None and theirs is not None and theirs != "ANY" and mine != theirs
        ]
        if differences:
            raise ValueError(
                f"{file_label(model)}: the {kind} reference {file_label(reference)} is for another "
                f"configuration: {', '.join(differences)}"
            )


def assign_slicer_wcs(model, geometry):
    """Complete the frame's ``meta.wcsinfo`` (its spaxel grid) and store its slicer gwcs in ``meta.wcs``, in place.

    Parameters
    ----------
    model : IRISIFSImageModel
        A slicer frame with pointing metadata (``meta.wcsinfo`` of its spaxel grid, ``SPAXSCL``).
    geometry : SlicerGeometry
        Its slice geometry and wavelength solution.

    Raises
    ------
    WcsInfoError
        The pointing metadata is incomplete or inconsistent.
    """
    from ..lib.models import model_name
    from .imaging import complete_wcsinfo

    info = complete_wcsinfo(dict(model.meta.wcsinfo.instance), model.meta.instrument.spaxel_scale, model_name(model))
    model.meta.wcsinfo = info
    model.meta.wcs = slicer_gwcs(geometry, info, model.data.shape)
