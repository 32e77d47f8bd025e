"""Contract tests: the camera's real protocol clients against the real central server."""
