"""The slicer IFS's wavelength solution from arc frames (the ``wavecal`` reference)."""
