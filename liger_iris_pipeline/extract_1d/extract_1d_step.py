"""`Extract1dStep`: the spectrum of a point source in an IFS cube (``_x1d``)."""

import logging
import math

from ..stpipe import StepSkipped, TMTStep
from .extract import cube_wavelengths, extract_point_source, source_position

__all__ = ["Extract1dStep"]

log = logging.getLogger(__name__)


class Extract1dStep(TMTStep):
    """Sum a circular aperture around a point source in every plane of a cube (photutils apertures).

    The source is at ``source_ra, source_dec`` if given, else at the centroid of the brightest
    spaxel of the cube summed over wavelength; a cube without a source (blank sky: the centroid
    of noise falls off the grid) is skipped, with no spectrum. With ``subtract_background`` the weighted mean of
    an annulus is subtracted per plane. The spectrum is in the cube's unit summed over the
    aperture (``FLUXUNIT``; DN/s per wavelength bin before flux calibration).
    """

    class_alias = "extract_1d"
    input_model = ("IRISCubeModel",)

    spec = """
    source_ra = float(default=None)  # Right ascension of the source (deg); None: the cube's brightest source
    source_dec = float(default=None)  # Declination of the source (deg)
    radius = float(min=0, default=2.0)  # Aperture radius (spaxels)
    subtract_background = boolean(default=False)  # Subtract the mean of an annulus around the source, plane by plane
    inner_radius = float(min=0, default=3.0)  # Inner radius of the background annulus (spaxels)
    outer_radius = float(min=0, default=5.0)  # Outer radius of the background annulus (spaxels)
    """

    def apply(self, cube):
        """Extract the spectrum of the step's cube (see `TMTStep.apply`).

        Returns
        -------
        IRISSpectrumModel

        Raises
        ------
        ValueError
            A broken spectral WCS, an annulus whose outer radius is not beyond its inner one, or a
            source given by RA and Dec outside the cube.
        """
        from ..datamodels import IRISSpectrumModel

        cube_wavelengths(cube)  # refused before anything is made
        if self.subtract_background and not self.outer_radius > self.inner_radius:
            raise ValueError(f"the background annulus {self.inner_radius}-{self.outer_radius} spaxels is empty")
        position = source_position(cube, self.source_ra, self.source_dec)
        ny, nx = cube.data.shape[1:]
        if not all(math.isfinite(value) for value in position) or not (
            -0.5 <= position[0] <= nx - 0.5 and -0.5 <= position[1] <= ny - 0.5
        ):
            where = f"spaxel ({position[0]:.3g}, {position[1]:.3g}) is outside the {nx} x {ny} spaxel grid"
            if self.source_ra is not None and self.source_dec is not None:
                raise ValueError(f"the source at RA {self.source_ra}, Dec {self.source_dec}: {where}")
            raise StepSkipped(f"no point source found in the cube (its centroid, {where})")
        annulus = (self.inner_radius, self.outer_radius) if self.subtract_background else None
        table = extract_point_source(cube, position, self.radius, annulus)
        ra, dec, _ = cube.meta.wcs(*position, 0)
        log.info(
            "Extracted the source at spaxel (%.3f, %.3f), RA %.7f Dec %.7f, radius %.3g spaxels%s",
            *position,
            ra,
            dec,
            self.radius,
            f", background annulus {annulus[0]}-{annulus[1]}" if annulus else "",
        )
        spectrum = IRISSpectrumModel()
        spectrum.update(cube)
        spectrum.spec_table = table
        spectrum.meta.flux_unit = cube.meta.bunit_data or "DN/s"
        spectrum.meta.filename = cube.meta.filename
        return spectrum
