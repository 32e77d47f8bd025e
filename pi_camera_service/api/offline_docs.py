"""Old import path of :mod:`pcs_common.offline_docs` (shared by the camera and the central server); the same module
object, so ``pi_camera_service.api.offline_docs`` keeps working, attributes and monkeypatching included."""

import sys

from pcs_common import offline_docs as _shared

sys.modules[__name__] = _shared
