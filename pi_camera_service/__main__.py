"""`python -m pi_camera_service`: same as the `pi-camera-service` console script."""

import sys

from pi_camera_service.cli import main

sys.exit(main())
