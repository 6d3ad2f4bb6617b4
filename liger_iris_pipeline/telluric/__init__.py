"""Telluric correction from a telluric standard's spectrum (`TelluricStep`)."""

from .telluric_step import TelluricStep

__all__ = ["TelluricStep"]
