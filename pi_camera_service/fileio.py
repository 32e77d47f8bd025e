"""Old import path of :mod:`pcs_common.fileio` (shared by the camera and the central server); the same module
object, so ``pi_camera_service.fileio`` keeps working, attributes and monkeypatching included."""

import sys

from pcs_common import fileio as _shared

sys.modules[__name__] = _shared
