"""Catalogs written next to simulated data: an astrometric reference catalog and photometric standards.

- `write_reference_catalog`: the stars of a scene as an astrometric catalog would list them
  (Gaia-like): positions perturbed by the catalog's errors (a few mas), some stars missing.
- `standards_catalog`: a few simulated standard stars with an A0V (Vega-like) spectrum, so their
  flux density in every simulated filter follows from their Vega magnitude and the Vega zero
  points of `~liger_iris_pipeline.simulate.filters.vega_zero_point`. The magnitudes are chosen
  so that a standard does not saturate a 30 m telescope's diffraction-limited core in ~15 s.
"""

import numpy as np

from . import filters

__all__ = ["STANDARD_STARS", "standards_catalog", "write_reference_catalog", "write_standards_catalog"]

STANDARD_STARS = {"SIM-STD-1": 18.0, "SIM-STD-2": 19.5, "SIM-STD-3": 21.0}
"""Simulated standard stars: name -> Vega magnitude (the same in every band: an A0V star)."""


def standards_catalog():
    """Return the simulated standards' flux densities in every simulated filter.

    Returns
    -------
    astropy.table.Table
        ``name, filter, flux_jy`` (Jy, the mean flux density over the filter's top-hat band,
        which the simulator treats as flat in F_nu), one row per star and filter.
    """
    from astropy.table import Table

    rows = [
        (name, filter_name, filters.vega_zero_point(filter_name) * 10 ** (-0.4 * magnitude))
        for name, magnitude in STANDARD_STARS.items()
        for filter_name in filters.filter_names()
    ]
    table = Table(rows=rows, names=("name", "filter", "flux_jy"), dtype=(str, str, np.float64))
    table["flux_jy"].unit = "Jy"
    table.meta["comment"] = ["Simulated A0V standards: Vega magnitude the same in every band."]
    return table


def write_standards_catalog(path):
    """Write `standards_catalog` as ECSV; return the path as a string."""
    standards_catalog().write(path, format="ascii.ecsv", overwrite=True)
    return str(path)


def write_reference_catalog(
    scene,
    path,
    error_mas=2.0,
    completeness=0.9,
    seed=0,
    filter="Kbb",  # noqa: A002
    instrument="iris",
):
    """Write an astrometric reference catalog of a scene's stars (ECSV).

    Parameters
    ----------
    scene : Scene
        The stars (point sources) are listed; galaxies are not.
    path : str or os.PathLike
        Output ECSV file.
    error_mas : float
        Catalog position error (mas, 1 sigma per axis): each position is moved by a normal
        draw of this width, and ``ra_error, dec_error`` say so.
    completeness : float
        Fraction of the stars kept (a random selection).
    seed : int
        Seed of the errors and the selection.
    filter : str
        Filter of the ``abmag`` column.
    instrument : str
        Telescope whose `filters.dn_per_jy` converts the scene's rates to Jy.

    Returns
    -------
    astropy.table.Table
        ``id`` (of the true star, the truth's ``sources`` row), ``ra, dec`` (deg),
        ``ra_error, dec_error`` (mas; ``ra_error`` along the sky, not in RA degrees),
        ``abmag`` and ``mag`` (the same AB magnitude in ``filter``).
    """
    from astropy.table import Table

    if not 0.0 < completeness <= 1.0:
        raise ValueError(f"completeness {completeness} is not within (0, 1]")
    rng = np.random.default_rng(seed)
    keep = rng.uniform(size=scene.ra.size) < completeness
    errors = rng.standard_normal((2, scene.ra.size)) * error_mas / 3.6e6  # deg
    dec = scene.dec + errors[1]
    ra = (scene.ra + errors[0] / np.cos(np.radians(scene.dec))) % 360.0
    magnitude = filters.abmag(scene.flux / filters.dn_per_jy(filter, instrument))
    table = Table(
        {
            "id": np.arange(1, scene.ra.size + 1, dtype=np.int32)[keep],
            "ra": ra[keep],
            "dec": dec[keep],
            "ra_error": np.full(int(keep.sum()), float(error_mas)),
            "dec_error": np.full(int(keep.sum()), float(error_mas)),
            "abmag": magnitude[keep],
            "mag": magnitude[keep],
        }
    )
    for name, unit in (("ra", "deg"), ("dec", "deg"), ("ra_error", "mas"), ("dec_error", "mas")):
        table[name].unit = unit
    table.meta["comment"] = [
        f"Simulated astrometric reference catalog: {error_mas} mas errors, completeness {completeness}, "
        f"AB magnitudes in {filter}."
    ]
    table.write(path, format="ascii.ecsv", overwrite=True)
    return table
