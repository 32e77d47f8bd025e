"""The face detection and encoding library both services use: the camera detects and encodes faces
in its analysis stream, the central server encodes the photos an administrator enrols.

Service-independent: it imports neither service (``tests/test_architecture.py`` checks it). What the
camera adds around it (sampling, the detector worker process, face tracks, events) is
``pi_camera_service.detection``.

* :mod:`~pcs_common.faces.registry`: ``CAMERA_FACE_DETECTOR`` names (``hog``, ``haar``), their
  config classes and :func:`~pcs_common.faces.registry.create_detector` (pydantic only).
* :mod:`~pcs_common.faces.frames`: :class:`~pcs_common.faces.frames.Frame` (I420) and
  :class:`~pcs_common.faces.frames.AnalysisFrame`, the detectors' input.
* :mod:`~pcs_common.faces.detector`: the ``hog`` detector (dlib HOG + Haar + tracking; how a face is
  decided); :mod:`~pcs_common.faces.haar`: the ``haar`` detector.
* :mod:`~pcs_common.faces.candidates`: what both detectors share between scan and decision.
* :mod:`~pcs_common.faces.results`: :class:`~pcs_common.faces.results.DetectionResult`,
  :class:`~pcs_common.faces.results.Face` (with its 128-d encoding),
  :class:`~pcs_common.faces.results.Profile`.
* :mod:`~pcs_common.faces.models`: locating and loading the dlib and OpenCV models (lazily), and the
  encoder worker process; its errors (``DetectionError``, ``ModelNotAvailable``, ``EncoderError``).

Importing this package imports nothing heavy; OpenCV and numpy load with ``frames``/``detector``,
dlib on the first analysis.
"""
