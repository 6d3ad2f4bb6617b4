"""`CubeBuildStep`: slicer IFS frames -> a regular (x, y, wavelength) cube (``_s3d``)."""

import logging

import numpy as np

from ..lib.models import file_label
from ..stpipe import TMTStep
from .build import build_cube, check_same_pointing, default_grid
from .cube_wcs import cube_gwcs, cube_wcsinfo

__all__ = ["CubeBuildStep"]

log = logging.getLogger(__name__)


class CubeBuildStep(TMTStep):
    """Resample one or more slicer frames (with their slicer WCS) onto a cube, conserving flux and variance.

    Each good pixel's flux is shared among the voxels its footprint in (slice, s, wavelength)
    overlaps, in proportion to the overlap (jwst's drizzle weighting; `cube_build.build`); the
    cube is in the frames' unit per spaxel per wavelength bin (DN/s before flux calibration,
    ``BUNIT``). The spatial grid is the frames' spaxel grid, the wavelength axis linear
    (`cube_build.cube_wcs`).
    """

    class_alias = "cube_build"
    input_model = ("IRISIFSImageModel",)
    frames_input = True

    spec = """
    wavelength_step = float(min=0, default=None)  # Plane width (um); None: the median dispersion per detector row
    wavelength_min = float(min=0, default=None)  # Centre of the first plane (um); None: the shortest wavelength on every slice
    wavelength_max = float(min=0, default=None)  # Centre of the last plane at most (um); None: the longest on every slice
    """  # noqa: E501

    def apply(self, frames):
        """Build the cube of the frames (see `TMTStep.apply`).

        Returns
        -------
        IRISCubeModel

        Raises
        ------
        ValueError
            A frame without slicer WCS (run assign_wcs first), frames of different pointings,
            or an empty wavelength range.
        """
        from ..datamodels import IRISCubeModel

        first = frames[0]
        for frame in frames:
            if frame.meta.cal_step.assign_wcs != "COMPLETE" or frame.meta.wcs is None:
                raise ValueError(f"{file_label(frame)}: no slicer WCS: run assign_wcs (spec2) before cube_build")
        check_same_pointing(frames)
        grid = default_grid(first, self.wavelength_step, self._wavelength_range(first))
        info = first.meta.wcsinfo
        ny, nx = grid.ny, grid.nx
        center = first.meta.wcs.get_transform("slicer", "world")((ny - 1) / 2.0, nx / 2.0, 1.0)[:2]
        wcsinfo = cube_wcsinfo(
            center,
            first.meta.instrument.spaxel_scale,
            info.position_angle or 0.0,
            grid.wavelength_start,
            grid.wavelength_step,
            grid.shape,
        )
        arrays = build_cube(frames, grid)
        cube = IRISCubeModel()
        for name, values in arrays.items():
            setattr(cube, name, values)
        cube.update(first)
        cube.meta.wcsinfo = wcsinfo
        cube.meta.wcs = cube_gwcs(wcsinfo, grid.shape)
        cube.meta.bunit_data = first.meta.bunit_data or "DN/s"
        cube.meta.bunit_err = cube.meta.bunit_data
        cube.meta.filename = first.meta.filename
        covered = np.count_nonzero(arrays["wmap"] > 0)
        log.info(
            "Cube %s (nwave, ny, nx) from %d frame(s): %.6f-%.6f um in steps of %.3g um; %d of %d voxels with data",
            grid.shape,
            len(frames),
            grid.wavelength_start,
            grid.wavelength_start + (grid.nwave - 1) * grid.wavelength_step,
            grid.wavelength_step,
            covered,
            arrays["wmap"].size,
        )
        return cube

    def _wavelength_range(self, frame):
        if self.wavelength_min is None and self.wavelength_max is None:
            return None
        full = default_grid(frame, self.wavelength_step)
        last = full.wavelength_start + (full.nwave - 1) * full.wavelength_step
        return (self.wavelength_min or full.wavelength_start, self.wavelength_max or last)
