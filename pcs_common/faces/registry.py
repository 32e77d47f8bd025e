"""The face detector registry: ``CAMERA_FACE_DETECTOR`` names one of these, never hard-wired in the app.

Modelled on Frigate's detector registry (``frigate/detectors/``: a config class per detector with a
``type`` literal, gathered into a pydantic discriminated union, and a ``create_detector(config)``
that looks the implementation up by that key). Here each config class names its implementation
class, so adding a detector is one config class plus one implementation, listed in
:data:`DETECTOR_CONFIGS`.

==========  =========================================================  =============================
``type``    implementation                                             encodings
==========  =========================================================  =============================
``hog``     :class:`~pcs_common.faces.detector.FaceDetector`           dlib ResNet, 128-d
            (dlib HOG + Haar corroboration + tracking; the default)
``haar``    :class:`~pcs_common.faces.haar.HaarFaceDetector`           dlib ResNet, 128-d
            (OpenCV frontal + profile cascades only: the cheapest)
==========  =========================================================  =============================

``yunet`` (OpenCV's ``cv2.FaceDetectorYN``) is not offered: its model file must ship inside the
package with a verified digest, and no copy with the published sha256 could be obtained.

Encodings are produced by an *embedder*; every detector uses dlib's 128-d ResNet today
(:data:`EMBEDDERS`), whose tolerance central's matching uses. Another embedder would come with its
own tolerance, and encodings of two embedders are never compared.

This module imports only pydantic: the settings validate ``CAMERA_FACE_DETECTOR`` against
:func:`detector_names` without loading OpenCV or dlib.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError


@dataclass(frozen=True)
class Embedder:
    """A face embedder: ``dims``-d encodings, matched within Euclidean ``tolerance``.

    Attributes:
        name: registry key.
        dims: encoding length.
        tolerance: Euclidean distance under which two encodings are the same person.
        source: where the tolerance comes from.
    """

    name: str
    dims: int
    tolerance: float
    source: str


#: the embedders by name; encodings of different embedders are never compared
EMBEDDERS: dict[str, Embedder] = {
    "dlib_resnet": Embedder(
        "dlib_resnet", 128, 0.6,
        "dlib's dlib_face_recognition_resnet_model_v1 (99.38% on LFW); 0.6 is dlib's and face_recognition's tolerance",
    ),
}


class UnknownDetector(ValueError):
    """A detector name not in the registry; ``str()`` is one line naming it and the allowed names."""


class DetectorConfig(BaseModel):
    """What every detector config has. Subclasses set ``type`` to a ``Literal`` and ``implementation``.

    Attributes:
        type: the registry key (``CAMERA_FACE_DETECTOR``).
        embedder: key of :data:`EMBEDDERS` computing the encodings.
        profiles: also search faces in profile (Haar profile cascade, two passes).
        full_scan_interval: s between whole-frame scans while faces are tracked (0: every frame).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    embedder: Literal["dlib_resnet"] = "dlib_resnet"
    profiles: bool = True
    full_scan_interval: float = Field(1.0, ge=0)

    #: dotted path of the implementation class, imported on :meth:`create`
    implementation: ClassVar[str] = ""

    def parameters(self) -> dict[str, Any]:
        """Keyword arguments of the implementation's constructor taken from this config."""
        return self.model_dump(exclude={"type", "embedder"})

    def create(self, **runtime: Any) -> Any:
        """Build the detector; ``runtime`` keywords (e.g. ``encodings="inline"``) are passed on and
        win over the config's.

        Raises:
            ValueError: a parameter is out of range for the implementation.
        """
        module, _, name = self.implementation.rpartition(".")
        import importlib

        cls = getattr(importlib.import_module(module), name)
        return cls(**{**self.parameters(), **runtime})


class HogDetectorConfig(DetectorConfig):
    """``hog``: dlib's HOG decides, Haar corroborates, faces are tracked (the default).

    Attributes:
        upsample: HOG pyramid upsampling (0: faces >= 80 analysis px; 1: >= 40 px for 4x the cost).
        alone_threshold: HOG score that reports a face with no other support.
    """

    type: Literal["hog"] = "hog"
    implementation: ClassVar[str] = "pcs_common.faces.detector.FaceDetector"
    upsample: Literal[0, 1, 2] = 0
    alone_threshold: float = 0.3


class HaarDetectorConfig(DetectorConfig):
    """``haar``: OpenCV's frontal and profile Viola-Jones cascades alone (no HOG): the cheapest.

    Attributes:
        haar_min_neighbors: ``detectMultiScale`` minNeighbors of the frontal cascade.
        confirm_neighbors: neighbours a face seen for the first time needs (None: ``haar_min_neighbors``).
    """

    type: Literal["haar"] = "haar"
    implementation: ClassVar[str] = "pcs_common.faces.haar.HaarFaceDetector"
    haar_min_neighbors: int = Field(5, ge=1)
    confirm_neighbors: int | None = Field(None, ge=1)


#: every detector config class; its ``type`` default is its registry key
DETECTOR_CONFIGS: tuple[type[DetectorConfig], ...] = (HogDetectorConfig, HaarDetectorConfig)

AnyDetectorConfig = Annotated[Union[HogDetectorConfig, HaarDetectorConfig], Field(discriminator="type")]
"""The discriminated union of the configs (pydantic picks the class by ``type``)."""

_ADAPTER: TypeAdapter[Any] = TypeAdapter(AnyDetectorConfig)


def detector_names() -> tuple[str, ...]:
    """The registry keys, default first: ``("hog", "haar")``."""
    return tuple(c.model_fields["type"].default for c in DETECTOR_CONFIGS)


def detector_config(name: str, **params: Any) -> DetectorConfig:
    """The config of detector ``name`` with ``params`` (field names of its config class).

    Raises:
        UnknownDetector: ``name`` is not a registry key.
        pydantic.ValidationError: a parameter is unknown or out of range.
    """
    if name not in detector_names():
        raise UnknownDetector(f"unknown face detector {name!r}; allowed: {', '.join(detector_names())}")
    return _ADAPTER.validate_python({"type": name, **params})


def create_detector(config: DetectorConfig | str, **runtime: Any) -> Any:
    """Build a detector from its config or registry name (with the config's defaults).

    Args:
        config: a :class:`DetectorConfig` or a name of :func:`detector_names`.
        runtime: constructor keywords that win over the config (``encodings``, ``encoding_max_age``...).

    Raises:
        UnknownDetector: an unknown name.
    """
    if isinstance(config, str):
        config = detector_config(config)
    return config.create(**runtime)


__all__ = [
    "EMBEDDERS", "AnyDetectorConfig", "DetectorConfig", "Embedder", "HaarDetectorConfig", "HogDetectorConfig",
    "UnknownDetector", "ValidationError", "create_detector", "detector_config", "detector_names",
]
