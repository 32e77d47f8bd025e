"""Code shared by the two services of Pi Camera Service: the camera (``pi_camera_service``) and the
central server (``central``).

The dependency rule: neither service imports the other; what both need lives here. This package is
imported by both services and imports neither (``tests/test_architecture.py`` checks it), so a camera
installed on its own (a Pi without the central server's SQLAlchemy, Alembic...) never loads ``central``.
Keep it small and free of heavy imports: each module imports its third-party libraries where it needs
them.

* :data:`__version__`: the software version, reported by both services.
* :mod:`pcs_common.mqtt`: MQTT broker URLs, topic prefixes and :class:`~pcs_common.mqtt.MqttLink`
  (paho-mqtt client, retained status and last will, publishing, reconnection).
* :mod:`pcs_common.ha_discovery`: Home Assistant MQTT device-based discovery topics and payloads.
* :mod:`pcs_common.faces`: face detectors, 128-d encodings and the frame types they take (OpenCV,
  dlib: imported only by its submodules).
* :mod:`pcs_common.errors`, :mod:`pcs_common.offline_docs`: the error body and its OpenAPI
  description; ``/docs`` and ``/redoc`` served from ``docs_assets/`` (no CDN).
* :mod:`pcs_common.fileio`: crash-safe writes, 0700 directories, 0600 files and secret files.
* :mod:`pcs_common.timefmt`: the one UTC time format; :mod:`pcs_common.geometry`: box IoU;
  :mod:`pcs_common.urls`: ``redact_url``; :mod:`pcs_common.jwt_secrets`: signing-key checks;
  :mod:`pcs_common.backoff`: the retry back-off.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
