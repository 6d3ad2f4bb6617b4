"""Row blocks: whole-frame arithmetic done a few MiB at a time, without whole-frame temporaries."""

__all__ = ["BLOCK_PIXELS", "row_blocks"]

BLOCK_PIXELS = 1 << 18
"""Pixels in one block (1 MiB of float32): small enough for the CPU caches, large enough for numpy."""


def row_blocks(shape, pixels=None):
    """Yield slices of consecutive rows covering a frame, each of about ``pixels`` pixels.

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)`` (or ``(..., ny, nx)``: the last two axes).
    pixels : int, optional
        Pixels per block; default `BLOCK_PIXELS`.

    Yields
    ------
    slice
        Rows of one block.
    """
    ny, nx = shape[-2:]
    rows = max(1, (BLOCK_PIXELS if pixels is None else pixels) // max(1, nx))
    for start in range(0, ny, rows):
        yield slice(start, min(start + rows, ny))
