"""Helpers shared by the calibration steps: one implementation of each idea.

- `subarray`: subarray geometry (slices, bounds from metadata, cut-outs of references).
- `variance`: the variance arrays and ``err = sqrt(var_poisson + var_rnoise + var_flat)``.
- `masks`: good-pixel masks (no DO_NOT_USE flag, finite values).
- `stats`: sigma clipping of samples and of stacks of frames, and a mode estimate.
- `models`: opening step inputs and reference files with clear errors.
- `status`: recording SKIPPED (with the reason logged) in ``meta.cal_step``.

Only numpy is imported here; astropy and the data models are imported by the functions that
need them, so that the simulator can use `subarray` cheaply.
"""
