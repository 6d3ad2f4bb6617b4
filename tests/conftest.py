"""Shared pytest configuration: keep every test off the network and out of the user's CRDS cache."""

import os

os.environ.setdefault("STPIPE_DISABLE_CRDS_STEPPARS", "true")
