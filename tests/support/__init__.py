"""What the test modules share, so that they never import one another or ``conftest.py``.

- :mod:`.paths` -- the sample video, test data, fakes and artifacts directories.
- :mod:`.net` -- free ports, LISTEN checks and :func:`~.net.wait_until` (event polling with a deadline).
- :mod:`.rtsp` -- a real RTSP receiver (``ffmpeg -rtsp_flags listen``) and PyAV decoding.
- :mod:`.processes` -- the camera and central services run as real processes.
- :mod:`.databases` -- throw-away PostgreSQL databases.
- :mod:`.xdist` -- state shared by the pytest-xdist workers of one run; loopback multicast probing.
- :mod:`.fake_camera` -- helpers around the fake ``picamera2`` package in ``tests/fakes``.
- :mod:`.camera_app` -- the one factory for in-process camera apps (TestClient).
- :mod:`.central_server` -- the central app in a thread on a real socket, and its API helpers.
- :mod:`.central_web`, :mod:`.e2e` -- central and camera processes driven like a user and a camera do.
- :mod:`.faces` -- real face frames and the encodings a camera computes from them.
- :mod:`.browser`, :mod:`.mqtt_broker`, :mod:`.ha_schema`, :mod:`.cgroups` -- Chromium, mosquitto, Home
  Assistant's discovery schema, cgroup v1 CPU/memory limits.

Fixtures stay in ``tests/conftest.py``; they build on these helpers.
"""
