"""Old import path of :mod:`pcs_common.faces.models` (shared by the camera and the central server); the same
module object, so ``pi_camera_service.detection.models`` keeps working, attributes and monkeypatching included."""

import sys

from pcs_common.faces import models as _shared

sys.modules[__name__] = _shared
