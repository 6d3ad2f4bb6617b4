"""Instrument module of IRIS: crds imports it when it loads any IRIS rmap; IRIS needs no hooks."""
