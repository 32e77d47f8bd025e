"""Mirrors ``picamera2/devices/imx708/__init__.py`` (0.3.36): exports ``IMX708``."""

from .imx708 import IMX708

__all__ = ["IMX708"]
