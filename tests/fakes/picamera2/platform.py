"""Mirrors ``picamera2/platform.py`` (0.3.36): ``Platform`` and ``get_platform()``.

Upstream probes ``/dev/video*`` for the ``pispbe`` (Pi 5) or ``bcm2835-isp`` (earlier Pis) ISP; the
fake reads ``FAKE_PICAMERA2_PLATFORM`` (``vc4``, the default, or ``pisp``) once, at import.
"""

import os
from enum import Enum


class Platform(Enum):
    VC4 = 0
    PISP = 1


_platform = Platform.PISP if os.environ.get("FAKE_PICAMERA2_PLATFORM", "vc4").lower() == "pisp" else Platform.VC4


def get_platform():
    return _platform
