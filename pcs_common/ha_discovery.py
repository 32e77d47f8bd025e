"""Home Assistant MQTT device-based discovery: topics and payloads shared by the camera and the central server.

Home Assistant's MQTT integration (https://www.home-assistant.io/integrations/mqtt/#device-discovery-payload,
Home Assistant 2024.11 and later) sets up every entity of a device from one retained JSON message on
``<discovery_prefix>/device/<object_id>/config``:

* at the root: ``dev`` (the device block, at least ``ids``), ``o`` (origin, at least ``name``), the
  availability options, and the options shared by every component (``state_topic``, ``qos``...);
* ``cmps``: ``{component_id: {"p": platform, "unique_id": ..., ...platform options}}``.

An empty retained message on the same topic removes the device and its entities. Home Assistant sends
``online`` on ``<discovery_prefix>/status`` when it (re)starts (its birth message); publishers resend
their discovery messages then, as the documentation recommends.

This module only builds strings and dicts (no network, no third-party import); both
``pi_camera_service`` (the camera's entities) and ``central`` (one presence device per person) use it.
Part of :mod:`pcs_common`: imports neither service.
"""

from __future__ import annotations

import re
from typing import Any

#: Home Assistant's default discovery prefix
DEFAULT_DISCOVERY_PREFIX = "homeassistant"
#: the application named in every message's origin block (``o``)
ORIGIN_NAME = "pi-camera-service"
#: what Home Assistant's MQTT integration sends on ``<prefix>/status`` when it starts (its birth message)
BIRTH_PAYLOAD = "online"
#: availability payloads (Home Assistant's defaults ``payload_available`` / ``payload_not_available``)
AVAILABLE = "online"
NOT_AVAILABLE = "offline"

_OBJECT_ID = re.compile(r"[a-zA-Z0-9_-]+")


def check_object_id(object_id: str) -> str:
    """``object_id`` unchanged when it is a valid discovery topic id.

    Raises:
        ValueError: not only ``[a-zA-Z0-9_-]`` characters (the documented character class), or empty.
    """
    if not _OBJECT_ID.fullmatch(object_id):
        raise ValueError(f"object id {object_id!r} must use only a-z, A-Z, 0-9, _ and -")
    return object_id


def config_topic(discovery_prefix: str, object_id: str) -> str:
    """``<discovery_prefix>/device/<object_id>/config`` (object id checked by :func:`check_object_id`)."""
    return f"{discovery_prefix}/device/{check_object_id(object_id)}/config"


def status_topic(discovery_prefix: str) -> str:
    """``<discovery_prefix>/status``: where Home Assistant announces itself (``online`` / ``offline``)."""
    return f"{discovery_prefix}/status"


def origin(sw_version: str) -> dict[str, str]:
    """The origin block ``{"name", "sw"}`` (``sw``: this software's version)."""
    return {"name": ORIGIN_NAME, "sw": sw_version}


def device_payload(device: dict[str, Any], sw_version: str, availability_topic: str,
                   components: dict[str, dict[str, Any]], **shared: Any) -> dict[str, Any]:
    """A device discovery payload.

    Args:
        device: the device block (``identifiers`` required; ``name``, ``manufacturer``, ``model``,
            ``sw_version``, ``configuration_url``, ``via_device``...).
        sw_version: the origin's software version.
        availability_topic: topic carrying :data:`AVAILABLE` / :data:`NOT_AVAILABLE` (retained, with
            :data:`NOT_AVAILABLE` as the publisher's MQTT last will).
        components: ``{component_id: options}``; each must have ``p`` (platform) and, for entities,
            ``unique_id``.
        shared: root options shared by the components (``state_topic``, ``qos``).

    Raises:
        ValueError: a component id is not a valid id, or a component has no ``p`` or ``unique_id``.
    """
    for cid, options in components.items():
        check_object_id(cid)
        if "p" not in options or "unique_id" not in options:
            raise ValueError(f"component {cid!r} needs 'p' (platform) and 'unique_id'")
    return {"dev": device, "o": origin(sw_version),
            "avty": [{"topic": availability_topic, "payload_available": AVAILABLE,
                      "payload_not_available": NOT_AVAILABLE}],
            **shared, "cmps": components}
