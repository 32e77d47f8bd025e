"""Old import path of :mod:`pcs_common.errors` (shared by the camera and the central server); the same module
object, so ``pi_camera_service.api.errors`` keeps working, attributes and monkeypatching included."""

import sys

from pcs_common import errors as _shared

sys.modules[__name__] = _shared
