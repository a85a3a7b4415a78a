"""Measured data, validation against it, calibration of efficiency parameters."""
