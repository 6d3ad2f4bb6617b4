"""Quick-look PNG of any product: Level 0 ramps, Level 1 and 2 frames, Level 3 mosaics, IFS cubes and spectra.

The image is block-averaged to at most `DISPLAY_PIXELS` on a side (a full frame in a fraction of
a second, and no detail a screen could show is lost), scaled with astropy's
``ZScaleInterval``, and drawn with matplotlib's object interface (``Figure`` on the Agg canvas,
no pyplot state, so the service can render from any thread). Pixels without data (DQ
``DO_NOT_USE``, non-finite, or no drizzle weight) are shown in `MASKED_COLOUR`: a display
pixel is masked when any of the pixels it averages is. With a WCS (the product's gwcs, else
the header's pointing WCS), a compass shows North and East and a bar the angular scale.

An IFS detector frame (``IRISIFSImageModel``) is shown as an image, without compass: its pixels
are spectra, not sky. A cube (``IRISCubeModel``) is shown as its white-light image
(`white_light_image`, with the compass and scale bar of the cube's spatial WCS) above its summed
spectrum (`summed_spectrum`); a spectrum (``IRISSpectrumModel``) as flux against wavelength. A
spectrum panel draws the 1-sigma error band, and shades bins without data in `MASKED_COLOUR`.
"""

import math
import os
from dataclasses import dataclass

import numpy as np

from ..dqflags import pixel as FLAGS

__all__ = [
    "DISPLAY_PIXELS",
    "MASKED_COLOUR",
    "PNG_SIZE",
    "QuicklookImage",
    "QuicklookSpectrum",
    "good_voxels",
    "nice_length",
    "product_wcs",
    "quicklook_image",
    "render_png",
    "sky_orientation",
    "summed_spectrum",
    "white_light_image",
]

DISPLAY_PIXELS = 1024
"""Largest side of the displayed image, after block averaging."""

MASKED_COLOUR = "#ff00ff"
"""Colour of pixels without data: magenta, which no grey scale contains."""

_FIGURE_INCHES = (8.0, 8.5)
_DPI = 128
PNG_SIZE = (int(_FIGURE_INCHES[0] * _DPI), int(_FIGURE_INCHES[1] * _DPI))
"""(width, height) of every PNG in pixels."""

_SPECTRUM_SHADE_ALPHA = 0.3
"""Opacity of the `MASKED_COLOUR` band over a spectrum's bins without data (the curve stays readable)."""

_LEVEL_NAMES = {0: "Level 0 (last - first read)", 1: "Level 1", 2: "Level 2", 3: "Level 3"}


@dataclass
class QuicklookSpectrum:
    """A spectrum panel: flux against wavelength.

    Attributes
    ----------
    wavelength, flux, error : numpy.ndarray
        float64 (n,): um, flux and its 1-sigma error (NaN in masked bins).
    masked : numpy.ndarray
        bool (n,), True where the bin has no data.
    label : str
        What the flux is, with its unit (the y axis).
    """

    wavelength: np.ndarray
    flux: np.ndarray
    error: np.ndarray
    masked: np.ndarray
    label: str


@dataclass
class QuicklookImage:
    """What a PNG shows of a product: an image, a spectrum, or both (a cube).

    Attributes
    ----------
    data : numpy.ndarray or None
        float32 (ny, nx) image (Level 0: last minus first read of the first integration, DN; a
        cube: its white-light image); None for a spectrum.
    masked : numpy.ndarray or None
        bool (ny, nx), True where the pixel has no data.
    wcs : gwcs.WCS or None
        Pixel (0-based) -> sky (deg) of the image.
    title : str
        File, filter, exposure type and level.
    spectrum : QuicklookSpectrum or None
        The spectrum panel (a cube's summed spectrum, or a spectrum product).
    """

    data: np.ndarray | None
    masked: np.ndarray | None
    wcs: object
    title: str
    spectrum: QuicklookSpectrum | None = None


def good_voxels(cube):
    """Return True where a voxel of a cube (IRISCubeModel) has data: finite, drizzle weight > 0, no DO_NOT_USE."""
    return np.isfinite(cube.data) & (cube.wmap > 0) & ((cube.dq & FLAGS["DO_NOT_USE"]) == 0)


def white_light_image(cube):
    """Return a cube's white-light image: the mean over wavelength of each spaxel's good voxels.

    A mean rather than a sum, so that a spaxel missing some planes (a slice edge, a flagged
    bin) is not darker than its neighbours.

    Parameters
    ----------
    cube : IRISCubeModel
        The cube (``(nwave, ny, nx)``).

    Returns
    -------
    tuple of numpy.ndarray
        ``(image, masked)``: float32 (ny, nx) in the cube's ``BUNIT``, NaN where masked, and
        bool (ny, nx), True for a spaxel without any good voxel.
    """
    good = good_voxels(cube)
    count = good.sum(axis=0)
    total = np.where(good, cube.data, 0.0).sum(axis=0, dtype=np.float64)
    masked = count == 0
    with np.errstate(invalid="ignore", divide="ignore"):
        image = np.where(masked, np.nan, total / count).astype(np.float32)
    return image, masked


def summed_spectrum(cube):
    """Return a cube's spectrum summed over its spaxels (good voxels only), with its error.

    Parameters
    ----------
    cube : IRISCubeModel
        The cube, with its spectral WCS (``meta.wcs`` and the FITS keywords, which must agree:
        `liger_iris_pipeline.extract_1d.extract.cube_wavelengths`).

    Returns
    -------
    QuicklookSpectrum
        Bins without any good voxel are masked.

    Raises
    ------
    ValueError
        The cube's spectral WCS is missing or inconsistent (one line naming the cube).
    """
    from ..extract_1d.extract import cube_wavelengths

    wavelength = cube_wavelengths(cube)
    good = good_voxels(cube)
    flux = np.where(good, cube.data, 0.0).sum(axis=(1, 2), dtype=np.float64)
    variance = np.where(good, np.square(cube.err, dtype=np.float64), 0.0).sum(axis=(1, 2))
    masked = ~good.any(axis=(1, 2))
    flux[masked] = np.nan
    error = np.where(masked, np.nan, np.sqrt(variance))
    unit = cube.meta.bunit_data or "?"
    return QuicklookSpectrum(wavelength, flux, error, masked, f"sum over spaxels ({unit})")


def _spectrum_product(model):
    """The `QuicklookSpectrum` of an `IRISSpectrumModel`: FLUX, FLUX_ERROR, masked where DQ DO_NOT_USE or not finite."""
    table = model.spec_table
    flux = np.asarray(table["FLUX"], dtype=np.float64)
    error = np.asarray(table["FLUX_ERROR"], dtype=np.float64)
    masked = ~np.isfinite(flux) | ((np.asarray(table["DQ"]) & FLAGS["DO_NOT_USE"]) != 0)
    wavelength = np.asarray(table["WAVELENGTH"], dtype=np.float64)
    flux, error = np.where(masked, np.nan, flux), np.where(masked, np.nan, error)
    return QuicklookSpectrum(wavelength, flux, error, masked, f"flux ({model.meta.flux_unit or 'Jy'})")


def product_wcs(model):
    """Return a model's WCS: its gwcs (``assign_wcs``, mosaics), else the header's pointing WCS, else None.

    Parameters
    ----------
    model : TMTDataModel
        Any product.

    Returns
    -------
    gwcs.WCS or None
        Pixel -> sky of the image a PNG shows: for a cube, the (x, y) axes of its gwcs (the
        same TAN projection, `liger_iris_pipeline.cube_build.cube_wcs.cube_gwcs`); None for the
        IFS detector's ramps and frames (their pixels are spectra, whatever pointing the header
        holds) and for a spectrum.
    """
    from .. import datamodels
    from ..assign_wcs.imaging import WcsInfoError, complete_wcsinfo, make_gwcs
    from ..lib.observation import is_ifs

    if isinstance(model, datamodels.IRISCubeModel):
        return make_gwcs(model.meta.wcsinfo.instance, model.data.shape[-2:])
    if isinstance(model, datamodels.IRISSpectrumModel) or is_ifs(model):
        return None
    wcs = getattr(model.meta, "wcs", None)
    if wcs is not None:
        return wcs

    info = model.meta.wcsinfo.instance if model.meta.wcsinfo is not None else {}
    try:
        info = complete_wcsinfo(info, model.meta.instrument.plate_scale, name=model.meta.filename or "model")
    except WcsInfoError:  # no pointing recorded (a dark, a flat): a PNG without compass
        return None
    return make_gwcs(info, model.data.shape[-2:])


def quicklook_image(model):
    """Return the image, mask, WCS and title a PNG shows of a product.

    Parameters
    ----------
    model : TMTRampModel, IRISImageModel, IRISIFSImageModel, IRISMosaicModel, IRISCubeModel or IRISSpectrumModel
        An open product.

    Returns
    -------
    QuicklookImage

    Raises
    ------
    ValueError
        The model is not one of those products, or a ramp has fewer than two reads.
    """
    from .. import datamodels

    name = os.path.basename(model.meta.filename or type(model).__name__)
    level = model.meta.processing_level
    spectrum = None
    if isinstance(model, datamodels.TMTRampModel):
        if model.data.ndim != 4 or model.data.shape[1] < 2:
            raise ValueError(
                f"{name}: a ramp needs two reads or more for a quick-look, its shape is {model.data.shape}"
            )
        data = model.data[0, -1].astype(np.float32) - model.data[0, 0].astype(np.float32)
        masked = (model.pixeldq & FLAGS["DO_NOT_USE"]) != 0
        level = 0
    elif isinstance(model, datamodels.IRISMosaicModel):
        data = np.asarray(model.data, dtype=np.float32)
        masked = ~np.isfinite(data) | ~(model.wht > 0)
        level = 3
    elif isinstance(model, datamodels.IRISImageModel | datamodels.IRISIFSImageModel):
        data = np.asarray(model.data, dtype=np.float32)
        masked = ~np.isfinite(data) | ((model.dq & FLAGS["DO_NOT_USE"]) != 0)
    elif isinstance(model, datamodels.IRISCubeModel):
        data, masked = white_light_image(model)
        spectrum = summed_spectrum(model)
    elif isinstance(model, datamodels.IRISSpectrumModel):
        data = masked = None
        spectrum = _spectrum_product(model)
    else:
        raise ValueError(
            f"{name}: a {type(model).__name__} has no quick-look (ramps, frames, mosaics, cubes and spectra have)"
        )
    parts = [name, model.meta.instrument.filter, model.meta.exposure.type, _LEVEL_NAMES.get(level)]
    title = "  |  ".join(str(part) for part in parts if part)
    return QuicklookImage(data, masked, product_wcs(model), title, spectrum)


def sky_orientation(wcs, x, y):
    """Return the directions of North and East and the pixel scale at a pixel.

    Parameters
    ----------
    wcs : gwcs.WCS or astropy.wcs.WCS
        Pixel -> sky (deg), with the common ``pixel_to_world_values``/``world_to_pixel_values``.
    x, y : float
        0-based pixel.

    Returns
    -------
    tuple of float
        ``(north, east, scale)``: angles in degrees counter-clockwise from the +x axis of the
        image drawn with its origin at the lower left, and arcsec per pixel (the geometric
        mean of the North and East steps).
    """
    ra, dec = (float(value) for value in wcs.pixel_to_world_values(x, y))
    # A step of about one pixel: linear, and inside the bounding box of even a small frame.
    ra1, dec1 = (float(value) for value in wcs.pixel_to_world_values(x + 1.0, y))
    step = math.hypot((ra1 - ra) * math.cos(math.radians(dec)), dec1 - dec)
    north = np.asarray(wcs.world_to_pixel_values(ra, dec + step), dtype=float)
    east = np.asarray(wcs.world_to_pixel_values(ra + step / math.cos(math.radians(dec)), dec), dtype=float)
    (nx, ny), (ex, ey) = north - (x, y), east - (x, y)
    scale = step * 3600.0 / math.sqrt(math.hypot(nx, ny) * math.hypot(ex, ey))
    return math.degrees(math.atan2(ny, nx)), math.degrees(math.atan2(ey, ex)), scale


def nice_length(limit):
    """Return the largest 1, 2 or 5 times a power of ten not above `limit` (> 0)."""
    power = 10.0 ** math.floor(math.log10(limit))
    return max(step * power for step in (1.0, 2.0, 5.0) if step * power <= limit)


def _block_average(data, masked, factor):
    """Mean of the unmasked pixels of each ``factor x factor`` block; a block is masked if any pixel is."""
    from astropy.nddata import block_reduce

    if factor == 1:
        return np.where(masked, np.nan, data), masked
    good = ~masked
    total = block_reduce(np.where(good, data, 0.0), factor, func=np.sum)
    count = block_reduce(good.astype(np.float32), factor, func=np.sum)
    any_masked = block_reduce(masked, factor, func=np.any)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (total / count).astype(np.float32)
    return mean, any_masked | (count == 0)


def _draw_compass(axes, north, east):
    """Arrows N and E in the upper right corner (axes coordinates)."""
    centre = np.array([0.88, 0.86])
    length = 0.08
    for label, angle in (("N", north), ("E", east)):
        tip = centre + length * np.array([math.cos(math.radians(angle)), math.sin(math.radians(angle))])
        axes.annotate(
            "",
            xy=tip,
            xytext=centre,
            xycoords="axes fraction",
            arrowprops={"arrowstyle": "->", "color": "yellow", "lw": 2},
        )
        text = centre + 1.35 * length * np.array([math.cos(math.radians(angle)), math.sin(math.radians(angle))])
        axes.text(*text, label, transform=axes.transAxes, color="yellow", ha="center", va="center", fontsize=13)


def _draw_scale_bar(axes, shape, scale, factor):
    """A bar of a round number of arcsec, about a fifth of the width, in the lower left corner."""
    ny, nx = shape
    arcsec = nice_length(0.2 * nx * factor * scale)
    length = arcsec / scale / factor  # in display pixels
    x0, y0 = 0.05 * nx, 0.05 * ny
    axes.plot([x0, x0 + length], [y0, y0], color="yellow", lw=3, solid_capstyle="butt")
    label = f'{arcsec:g}"' if arcsec >= 1 else f"{arcsec * 1000:g} mas"
    axes.text(x0 + length / 2, y0 + 0.015 * ny, label, color="yellow", ha="center", va="bottom", fontsize=12)


def _draw_image(axes, image):
    """Draw a `QuicklookImage`'s image on `axes`: zscale, masked pixels in `MASKED_COLOUR`, compass and bar."""
    import matplotlib
    from astropy.visualization import ImageNormalize, ZScaleInterval

    ny, nx = image.data.shape
    factor = max(1, math.ceil(max(ny, nx) / DISPLAY_PIXELS))
    display, masked = _block_average(image.data, image.masked, factor)
    shown = np.ma.masked_array(display, mask=masked | ~np.isfinite(display))
    values = shown.compressed()
    norm = ImageNormalize(values if values.size else np.zeros(1), interval=ZScaleInterval())
    cmap = matplotlib.colormaps["gray"].with_extremes(bad=MASKED_COLOUR)
    axes.imshow(shown, origin="lower", cmap=cmap, norm=norm, interpolation="nearest", aspect="equal")
    axes.set_axis_off()
    if image.wcs is not None:
        north, east, scale = sky_orientation(image.wcs, (nx - 1) / 2, (ny - 1) / 2)
        _draw_compass(axes, north, east)
        _draw_scale_bar(axes, shown.shape, scale, factor)


def _draw_spectrum(axes, spectrum):
    """Draw a `QuicklookSpectrum` on `axes`: the flux, its 1-sigma band, bins without data shaded."""
    wavelength = spectrum.wavelength
    axes.fill_between(
        wavelength, spectrum.flux - spectrum.error, spectrum.flux + spectrum.error, color="tab:blue", alpha=0.3, lw=0
    )
    axes.plot(wavelength, spectrum.flux, color="tab:blue", lw=0.8)
    if spectrum.masked.any():
        # Whole-height bands in the axes' y coordinates: a flagged bin is seen whatever the flux scale.
        axes.fill_between(
            wavelength,
            0.0,
            1.0,
            where=spectrum.masked,
            step="mid",
            transform=axes.get_xaxis_transform(),
            color=MASKED_COLOUR,
            alpha=_SPECTRUM_SHADE_ALPHA,
            lw=0,
        )
    good = spectrum.flux[~spectrum.masked]
    if good.size:
        low, high = float(good.min()), float(good.max())
        margin = 0.05 * (high - low) or 1.0
        axes.set_ylim(low - margin, high + margin)
    axes.set_xlim(wavelength.min(), wavelength.max())
    axes.set_xlabel("wavelength (um)")
    axes.set_ylabel(spectrum.label)
    axes.grid(alpha=0.3)


def _figure(image):
    """Return the matplotlib Figure of a `QuicklookImage`."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=_FIGURE_INCHES, dpi=_DPI)
    FigureCanvasAgg(figure)
    image_top = _FIGURE_INCHES[0] / _FIGURE_INCHES[1]
    if image.spectrum is None:
        # The image fills the width; the title takes the strip above it.
        _draw_image(figure.add_axes((0.0, 0.0, 1.0, image_top)), image)
    elif image.data is None:
        _draw_spectrum(figure.add_axes((0.12, 0.08, 0.84, image_top - 0.12)), image.spectrum)
    else:
        # A cube: its white-light image above, its summed spectrum below.
        _draw_image(figure.add_axes((0.0, 0.40, 1.0, image_top - 0.42)), image)
        _draw_spectrum(figure.add_axes((0.12, 0.07, 0.84, 0.28)), image.spectrum)
    figure.text(0.5, 1.0 - 0.25 * (1.0 - image_top), image.title, ha="center", fontsize=11)
    return figure


def render_png(product, png_path):
    """Write the quick-look PNG of a product.

    Parameters
    ----------
    product : str, os.PathLike or TMTDataModel
        A Level 0, 1, 2 or 3 file of this package, cubes and spectra included (or the product already open).
    png_path : str or os.PathLike
        The PNG to write; written under a temporary name and renamed, so it is complete or absent.

    Returns
    -------
    str
        ``png_path``.
    """
    from .. import datamodels
    from ..lib.output import writing

    if isinstance(product, str | os.PathLike):
        with datamodels.open(product) as model:
            image = quicklook_image(model)
    else:
        image = quicklook_image(product)
    figure = _figure(image)
    with writing(png_path) as temporary:
        # zlib level 1: noisy images hardly compress further, and the default level costs a second.
        figure.savefig(temporary, format="png", dpi=_DPI, pil_kwargs={"compress_level": 1})
    return os.fspath(png_path)
