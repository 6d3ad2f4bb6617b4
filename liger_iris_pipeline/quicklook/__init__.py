"""Quick-look images, DS9 region files and the night report (``tmt-quicklook``)."""
