"""Instrument module of Liger: crds imports it when it loads any Liger rmap; Liger needs no hooks."""
