"""Old import path of :mod:`pcs_common.viewer_ticket` (shared by the camera and the central server); the same module
object, so ``pi_camera_service.viewer_ticket`` keeps working, attributes and monkeypatching included."""

import sys

from pcs_common import viewer_ticket as _shared

sys.modules[__name__] = _shared
