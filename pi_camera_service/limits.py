"""Old import path of :mod:`pcs_common.limits` (shared by the camera and the central server); the same module
object, so ``pi_camera_service.limits`` keeps working, attributes and monkeypatching included."""

import sys

from pcs_common import limits as _shared

sys.modules[__name__] = _shared
