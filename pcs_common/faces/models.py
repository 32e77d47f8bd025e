"""Locate and load the face detection models, lazily and without ``pkg_resources``.

Models used (only these, to keep the resident memory low on a 512 MB Pi Zero 2 W):

* dlib's HOG + linear SVM frontal face detector (``dlib.get_frontal_face_detector()``, built into
  dlib, no file): the detector behind face_recognition's ``face_locations(model="hog")``;
* dlib's 5-point landmark predictor ``shape_predictor_5_face_landmarks.dat`` (9 MB): the one
  face_recognition's ``face_encodings(model="small")`` aligns faces with;
* dlib's ResNet face encoder ``dlib_face_recognition_resnet_model_v1.dat`` (22 MB): 128-d encodings,
  the same person usually within Euclidean distance 0.6;
* OpenCV's Viola-Jones Haar cascades ``haarcascade_frontalface_default.xml`` and
  ``haarcascade_profileface.xml`` from ``cv2.data.haarcascades`` (OpenCV 4.x only: OpenCV 5 dropped
  ``cv2.CascadeClassifier`` and the XML files).

The 68-point predictor (100 MB) and the CNN (MMOD) detector of the same distribution are never loaded.

The dlib files come from the ``face_recognition_models`` distribution. Its ``__init__`` imports
``pkg_resources`` (removed in setuptools >= 82), and ``face_recognition`` calls ``quit()`` when that
import fails, which would end the whole service. So this module imports neither package: it asks
:func:`importlib.util.find_spec` where the package directory is (which does not run the package's
``__init__``) and opens the files in its ``models/`` folder.

Nothing heavy is imported when this module is imported: ``dlib`` is imported, and each model read,
on first use (when detection starts), then kept for the life of the process.

The ResNet encoder holds Python's GIL for its whole computation (measured: 60 ms per face on
x86-64, far longer on a Pi Zero 2 W), which would stall the capture and streaming threads.
:class:`EncoderProcess` therefore runs it in a small worker process (this file run as a script:
dlib + numpy + the encoder only, ~67 MB RSS) fed with 150x150 aligned face chips over pipes; the
HOG detector and the OpenCV cascades release the GIL and run in-process.

Exception tree::

    DetectionError                 base class of detection errors
    ├── ModelNotAvailable          a package or model file is missing; the message says what to install
    └── EncoderError               the encoder worker process failed, died or timed out
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: distribution (and package) holding the dlib model files
MODELS_PACKAGE = "face_recognition_models"
#: dlib's 5-point landmark predictor (face_recognition ``pose_predictor_five_point_model_location()``)
SHAPE_PREDICTOR_5_FILE = "shape_predictor_5_face_landmarks.dat"
#: dlib's ResNet face encoder (face_recognition ``face_recognition_model_location()``)
FACE_ENCODER_FILE = "dlib_face_recognition_resnet_model_v1.dat"
#: OpenCV Viola-Jones cascades (``cv2.data.haarcascades``)
FRONTAL_CASCADE_FILE = "haarcascade_frontalface_default.xml"
PROFILE_CASCADE_FILE = "haarcascade_profileface.xml"
#: side of the aligned face chip the ResNet encoder takes, px (dlib ``get_face_chip`` defaults)
CHIP_SIZE = 150
CHIP_PADDING = 0.25
#: length of one face encoding
ENCODING_SIZE = 128

_INSTALL_MODELS = "pip install 'face_recognition_models>=0.3.0'"
_INSTALL_DLIB = "pip install dlib-bin (binary wheels that import as dlib; the dlib sdist takes hours to build on a Pi)"
_INSTALL_OPENCV = "pip install 'opencv-python-headless>=4.8,<5' (OpenCV 5 has no Haar cascades)"


class DetectionError(RuntimeError):
    """Base class of face detection errors."""


class ModelNotAvailable(DetectionError):
    """A package or model file needed for detection is missing; ``str()`` says what to install."""


class EncoderError(DetectionError):
    """The face encoder worker process failed to start, died, or did not answer in time."""


# --- locating files -------------------------------------------------------------------------------


def models_dir() -> Path:
    """The ``models/`` directory of the installed ``face_recognition_models`` package.

    Found with ``importlib.util.find_spec(...).submodule_search_locations``, which does not execute
    the package's ``__init__`` (so ``pkg_resources`` is not needed).

    Raises:
        ModelNotAvailable: the package is not installed, or has no ``models/`` directory.
    """
    try:
        spec = importlib.util.find_spec(MODELS_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        candidate = Path(location) / "models"
        if candidate.is_dir():
            return candidate
    raise ModelNotAvailable(
        f"face detection needs the dlib model files of the {MODELS_PACKAGE!r} package, "
        f"which is not installed: {_INSTALL_MODELS}"
    )


def model_path(filename: str) -> Path:
    """Path of one model file of ``face_recognition_models``, e.g. :data:`FACE_ENCODER_FILE`.

    Raises:
        ModelNotAvailable: the package or the file is missing.
    """
    path = models_dir() / filename
    if not path.is_file():
        raise ModelNotAvailable(
            f"model file {path} is missing; reinstall the models: "
            "pip install --force-reinstall 'face_recognition_models>=0.3.0'"
        )
    return path


# --- loading (once per process) -------------------------------------------------------------------

_lock = threading.Lock()
_cache: dict[str, Any] = {}


def dlib_module() -> Any:
    """The ``dlib`` module, imported on first call.

    Raises:
        ModelNotAvailable: dlib is not installed (the message says to install ``dlib-bin``).
    """
    try:
        return importlib.import_module("dlib")
    except ImportError as exc:
        raise ModelNotAvailable(f"face detection needs dlib ({exc}): {_INSTALL_DLIB}") from None


def _load_once(key: str, loader: Any) -> Any:
    with _lock:
        if key not in _cache:
            _cache[key] = loader()
        return _cache[key]


def _load_dat(kind: str, filename: str) -> Any:
    path = model_path(filename)
    dlib = dlib_module()
    try:
        return getattr(dlib, kind)(str(path))
    except RuntimeError as exc:  # dlib raises RuntimeError on a truncated or corrupt file
        raise ModelNotAvailable(
            f"cannot load {path} ({exc}); reinstall the models: "
            "pip install --force-reinstall 'face_recognition_models>=0.3.0'"
        ) from None


def hog_face_detector() -> Any:
    """dlib's HOG frontal face detector (``dlib.get_frontal_face_detector()``), shared, thread-safe.

    ``detector.run(rgb, upsample, adjust_threshold)`` on a ``(H, W, 3)`` uint8 RGB image returns
    ``(rectangles in px, SVM scores, sub-detector indexes)``; it releases the GIL.

    Raises:
        ModelNotAvailable: dlib is missing.
    """
    return _load_once("hog", lambda: dlib_module().get_frontal_face_detector())


def shape_predictor_5() -> Any:
    """dlib's 5-point ``shape_predictor`` from :data:`SHAPE_PREDICTOR_5_FILE`, shared, thread-safe.

    ``predictor(rgb, dlib.rectangle)`` gives a ``full_object_detection`` of 5 points (eye corners,
    nose), 0.2 ms per face on x86-64.

    Raises:
        ModelNotAvailable: dlib, the package or the file is missing or unreadable.
    """
    return _load_once("sp5", lambda: _load_dat("shape_predictor", SHAPE_PREDICTOR_5_FILE))


def face_encoder() -> Any:
    """dlib's ResNet ``face_recognition_model_v1`` from :data:`FACE_ENCODER_FILE`, in this process.

    Not thread-safe (the network keeps per-call buffers): callers serialise on :data:`encoder_lock`.
    Holds the GIL while it computes; :class:`EncoderProcess` avoids that.

    Raises:
        ModelNotAvailable: dlib, the package or the file is missing or unreadable.
    """
    return _load_once("resnet", lambda: _load_dat("face_recognition_model_v1", FACE_ENCODER_FILE))


#: serialises calls to the shared in-process :func:`face_encoder`
encoder_lock = threading.Lock()


def load_cascade(filename: str) -> Any:
    """A new ``cv2.CascadeClassifier`` for one of OpenCV's Haar cascades, e.g. :data:`PROFILE_CASCADE_FILE`.

    Each call returns a new classifier (a classifier must not be used by two threads at once).
    ``detectMultiScale`` releases the GIL.

    Raises:
        ModelNotAvailable: OpenCV has no ``CascadeClassifier``/``cv2.data`` (OpenCV 5), or the XML file
            is missing or unreadable.
    """
    import cv2

    data = getattr(cv2, "data", None)
    if not hasattr(cv2, "CascadeClassifier") or data is None or not hasattr(data, "haarcascades"):
        raise ModelNotAvailable(f"OpenCV {cv2.__version__} has no Haar cascades: {_INSTALL_OPENCV}")
    path = Path(data.haarcascades) / filename
    classifier = cv2.CascadeClassifier(str(path)) if path.is_file() else None
    if classifier is None or classifier.empty():
        raise ModelNotAvailable(f"cannot load the Haar cascade {path}: {_INSTALL_OPENCV}")
    return classifier


def encode_chips_inline(chips: Any, num_jitters: int = 1) -> Any:
    """128-d encodings of aligned face chips, computed in this process (holds the GIL).

    Args:
        chips: ``(N, 150, 150, 3)`` uint8 RGB chips from ``dlib.get_face_chip(img, shape, 150, 0.25)``.
        num_jitters: random re-samplings averaged per face (face_recognition's ``num_jitters``).

    Returns:
        ``(N, 128)`` float64 array; the same numbers as face_recognition's ``face_encodings``.

    Raises:
        ModelNotAvailable: dlib or the encoder file is missing.
    """
    import numpy as np

    encoder = face_encoder()
    out = np.empty((len(chips), ENCODING_SIZE), dtype=np.float64)
    with encoder_lock:
        for i, chip in enumerate(chips):
            out[i] = np.asarray(encoder.compute_face_descriptor(np.ascontiguousarray(chip), int(num_jitters)))
    return out


# --- the encoder worker process -------------------------------------------------------------------
#
# Protocol over the worker's stdin/stdout, little-endian:
#   worker -> parent once at start:  status u32, length u32, payload (0: ready; 1 failed, 2 model
#                                    missing: error text)
#   parent -> worker per request:    count u32, num_jitters u32, chip side u32, count*side*side*3 bytes
#   worker -> parent per request:    status u32, length u32, payload (0: count*128 float64; 1: error text)

_WORKER_BOOT = "import runpy, sys; runpy.run_path(sys.argv[1], run_name='__main__')"
_REQUEST = struct.Struct("<III")
_OK, _FAILED, _MISSING = 0, 1, 2
_REPLY = struct.Struct("<II")


def _read_exact(fd: int, n: int, deadline: float | None = None) -> bytes | None:
    """``n`` bytes from ``fd``; None at end of file. Raises TimeoutError after ``deadline`` (monotonic)."""
    chunks: list[bytes] = []
    remaining = n
    while remaining:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError(f"no answer within the time limit ({n - remaining}/{n} bytes read)")
        chunk = os.read(fd, min(remaining, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _write_all(fd: int, data: bytes, deadline: float) -> None:
    """Write ``data`` to the non-blocking ``fd``; TimeoutError after ``deadline`` (monotonic)."""
    view = memoryview(data)
    while view:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([], [fd], [], left)[1]:
            raise TimeoutError(f"could not send the request within the time limit ({len(view)} bytes left)")
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:
            continue


def _write_reply(out: Any, status: int, payload: bytes) -> None:
    out.write(_REPLY.pack(status, len(payload)))
    out.write(payload)
    out.flush()


def serve_encoder() -> int:
    """Main of the encoder worker (this file run as a script): answer requests on stdin/stdout until
    stdin closes; returns the exit status."""
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # stray prints go to stderr, never into the protocol
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when this process ends
    try:
        import numpy as np

        encoder = face_encoder()
    except ModelNotAvailable as exc:
        _write_reply(out, _MISSING, str(exc).encode())
        return 1
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises it
        _write_reply(out, _FAILED, repr(exc).encode())
        return 1
    _write_reply(out, _OK, b"")
    fd = sys.stdin.fileno()
    while True:
        header = _read_exact(fd, _REQUEST.size)
        if header is None:
            return 0
        count, jitters, side = _REQUEST.unpack(header)
        data = _read_exact(fd, count * side * side * 3)
        if data is None:
            return 0
        try:
            chips = np.frombuffer(data, dtype=np.uint8).reshape(count, side, side, 3)
            result = np.empty((count, ENCODING_SIZE), dtype="<f8")
            for i in range(count):
                result[i] = np.asarray(encoder.compute_face_descriptor(np.ascontiguousarray(chips[i]), jitters))
            _write_reply(out, _OK, result.tobytes())
        except Exception as exc:  # noqa: BLE001 - one bad request must not end the worker
            _write_reply(out, _FAILED, repr(exc).encode())


class EncoderProcess:
    """Runs dlib's ResNet face encoder in a worker process, so encoding never holds this process's GIL.

    The worker (this file run as a script by ``sys.executable``) is started on first use and
    restarted after a failure; it exits by itself when this process closes its stdin or dies.
    Thread-safe (requests are serialised). Call :meth:`close` to end it early.

    Args:
        start_timeout: longest wait for the worker to import dlib and load the model, s.
        request_timeout: longest wait for one request, s (the worker is killed after it).
    """

    def __init__(self, start_timeout: float = 120.0, request_timeout: float = 60.0) -> None:
        self.start_timeout = start_timeout
        self.request_timeout = request_timeout
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """Process id of the running worker, or None."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def _start(self) -> subprocess.Popen[bytes]:
        # This file is run on its own (runpy.run_path), not as part of the package: whatever the
        # package's __init__ imports (OpenCV...) stays out of the worker's memory.
        proc = subprocess.Popen(
            [sys.executable, "-c", _WORKER_BOOT, str(Path(__file__).resolve())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            close_fds=True,
        )
        assert proc.stdin is not None
        os.set_blocking(proc.stdin.fileno(), False)  # requests are written with a deadline
        try:
            status, payload = self._reply(proc, time.monotonic() + self.start_timeout)
        except BaseException:
            self._kill(proc)
            raise
        if status != _OK:
            self._kill(proc)
            message = payload.decode(errors="replace")
            raise ModelNotAvailable(message) if status == _MISSING else EncoderError(message)
        log.info("face encoder worker started (pid %d)", proc.pid)
        return proc

    @staticmethod
    def _reply(proc: subprocess.Popen[bytes], deadline: float) -> tuple[int, bytes]:
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        try:
            header = _read_exact(fd, _REPLY.size, deadline)
            if header is not None:
                status, length = _REPLY.unpack(header)
                payload = _read_exact(fd, length, deadline)
                if payload is not None:
                    return status, payload
        except TimeoutError as exc:
            raise EncoderError(f"face encoder worker did not answer: {exc}") from None
        raise EncoderError(f"face encoder worker exited (status {proc.poll()})")

    @staticmethod
    def _kill(proc: subprocess.Popen[bytes]) -> None:
        for stream in (proc.stdin, proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        try:
            proc.wait(timeout=1)  # the worker exits by itself once its stdin is closed
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def encode(self, chips: Any, num_jitters: int = 1) -> Any:
        """128-d encodings of aligned face chips.

        Args:
            chips: ``(N, 150, 150, 3)`` uint8 RGB from ``dlib.get_face_chip(img, shape, 150, 0.25)``.
            num_jitters: random re-samplings averaged per face (face_recognition's ``num_jitters``).

        Returns:
            ``(N, 128)`` float64 array, identical to dlib's in-process ``compute_face_descriptor``.

        Raises:
            ModelNotAvailable: the worker cannot import dlib or load the model.
            EncoderError: the worker failed, died or timed out (it is restarted on the next call).
        """
        import numpy as np

        chips = np.ascontiguousarray(chips, dtype=np.uint8)
        if chips.ndim != 4 or chips.shape[1] != chips.shape[2] or chips.shape[3] != 3:
            raise ValueError(f"chips must be (N, S, S, 3) uint8, got {chips.shape}")
        count = chips.shape[0]
        if count == 0:
            return np.empty((0, ENCODING_SIZE), dtype=np.float64)
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._proc = None
                self._proc = self._start()
            proc = self._proc
            assert proc.stdin is not None
            deadline = time.monotonic() + self.request_timeout
            request = _REQUEST.pack(count, int(num_jitters), chips.shape[1]) + chips.tobytes()
            try:
                _write_all(proc.stdin.fileno(), request, deadline)
                status, payload = self._reply(proc, deadline)
            except (OSError, TimeoutError, EncoderError) as exc:
                self._proc = None
                self._kill(proc)
                if isinstance(exc, EncoderError):
                    raise
                if isinstance(exc, TimeoutError):
                    raise EncoderError(f"face encoder worker did not answer: {exc}") from None
                raise EncoderError(f"face encoder worker is gone: {exc}") from None
        if status != _OK:
            raise EncoderError(f"face encoder failed: {payload.decode(errors='replace')}")
        return np.frombuffer(payload, dtype="<f8").reshape(count, ENCODING_SIZE).astype(np.float64)

    def close(self) -> None:
        """End the worker (idempotent); a later :meth:`encode` starts a new one."""
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is not None:
            self._kill(proc)

    def __del__(self) -> None:  # pragma: no cover - best effort at interpreter exit
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass


if __name__ == "__main__":
    sys.exit(serve_encoder())
