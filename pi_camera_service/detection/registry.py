"""Old import path of :mod:`pcs_common.faces.registry` (shared by the camera and the central server); the same
module object, so ``pi_camera_service.detection.registry`` keeps working, attributes and monkeypatching included."""

import sys

from pcs_common.faces import registry as _shared

sys.modules[__name__] = _shared
