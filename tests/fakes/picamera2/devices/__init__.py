"""Mirrors ``picamera2/devices/__init__.py`` (0.3.36).

Upstream exports ``Hailo``/``hailo_architecture`` (only when ``hailo_platform`` is installed),
``IMX500`` and ``IMX708``. The fake exports only ``IMX708``: the Hailo and IMX500 helpers need
accelerator hardware and heavy packages this project does not use.
"""

from .imx708 import IMX708

__all__ = ["IMX708"]
