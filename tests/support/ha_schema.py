"""Home Assistant's MQTT device-based discovery payload as pydantic models, written from its documentation
(https://www.home-assistant.io/integrations/mqtt/ "Device discovery payload", "Using availability
topics", "Adding information about the origin", and the per-platform pages sensor.mqtt,
binary_sensor.mqtt, switch.mqtt, button.mqtt, image.mqtt), plus a renderer that applies a component's
``value_template`` to a state message the way Home Assistant does (Jinja2, ``value_json``).

Unknown keys are rejected here (Home Assistant ignores them, so a misspelt option would silently do
nothing): every key a payload uses must be one the documentation defines. Abbreviations are not
accepted except the ones the documentation's own device-discovery example uses at the root
(``dev``, ``o``, ``cmps``, ``avty``) and ``p`` (platform), so the messages stay readable.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal, Union

import jinja2
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ID = re.compile(r"[a-zA-Z0-9_-]+")
#: the units Home Assistant accepts for a sensor device class (sensor docs, "Device class")
UNITS = {"illuminance": {"lx"}, "temperature": {"°C", "°F", "K"}}
#: a device class whose state is not numeric, so no unit and no state_class
NON_NUMERIC = {"enum", "timestamp", "date"}
BINARY_DEVICE_CLASSES = {"battery", "battery_charging", "carbon_monoxide", "cold", "connectivity", "door",
                         "garage_door", "gas", "heat", "light", "lock", "moisture", "motion", "moving",
                         "occupancy", "opening", "plug", "power", "presence", "problem", "running", "safety",
                         "smoke", "sound", "tamper", "update", "vibration", "window"}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Device(Strict):
    """``device`` / ``dev``: at least one of identifiers or connections."""

    identifiers: list[str] | str | None = None
    connections: list[list[str]] | None = None
    name: str | None = None
    manufacturer: str | None = None
    model: str | None = None
    model_id: str | None = None
    sw_version: str | None = None
    hw_version: str | None = None
    serial_number: str | None = None
    configuration_url: str | None = None
    suggested_area: str | None = None
    via_device: str | None = None

    @model_validator(mode="after")
    def _identified(self) -> "Device":
        if not self.identifiers and not self.connections:
            raise ValueError("the device needs identifiers or connections")
        if self.configuration_url and not self.configuration_url.startswith(("http://", "https://", "homeassistant://")):
            raise ValueError("configuration_url must be http(s):// or homeassistant://")
        return self


class Origin(Strict):
    """``origin`` / ``o``: ``name`` required."""

    name: str = Field(min_length=1)
    sw_version: str | None = Field(None, alias="sw")
    support_url: str | None = Field(None, alias="url")
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Availability(Strict):
    topic: str = Field(min_length=1)
    payload_available: str = "online"
    payload_not_available: str = "offline"
    value_template: str | None = None


class Entity(Strict):
    """Options every entity platform shares."""

    unique_id: str = Field(min_length=1)
    name: str | None = None
    icon: str | None = Field(None, pattern=r"^mdi:[a-z0-9-]+$")
    entity_category: Literal["config", "diagnostic"] | None = None
    enabled_by_default: bool = True
    object_id: str | None = None
    json_attributes_topic: str | None = None
    json_attributes_template: str | None = None
    state_topic: str | None = None
    qos: Literal[0, 1, 2] | None = None
    encoding: str | None = None


class Sensor(Entity):
    p: Literal["sensor"]
    value_template: str | None = None
    device_class: Literal["illuminance", "temperature", "enum", "timestamp", "date", "duration",
                          "power", "humidity", "voltage", "signal_strength"] | None = None
    unit_of_measurement: str | None = None
    state_class: Literal["measurement", "total", "total_increasing", "measurement_angle"] | None = None
    options: list[str] | None = None
    expire_after: int | None = None
    force_update: bool | None = None
    suggested_display_precision: int | None = None

    @model_validator(mode="after")
    def _consistent(self) -> "Sensor":
        if self.device_class in NON_NUMERIC and (self.unit_of_measurement or self.state_class):
            raise ValueError(f"a {self.device_class} sensor has no unit_of_measurement or state_class")
        if (self.options is not None) != (self.device_class == "enum"):
            raise ValueError("options go with device_class enum, and enum needs options")
        if self.device_class in UNITS and self.unit_of_measurement not in UNITS[self.device_class]:
            raise ValueError(f"a {self.device_class} sensor's unit must be one of {sorted(UNITS[self.device_class])}")
        return self


class BinarySensor(Entity):
    p: Literal["binary_sensor"]
    value_template: str | None = None
    payload_on: str = "ON"
    payload_off: str = "OFF"
    device_class: str | None = None
    off_delay: int | None = None
    expire_after: int | None = None
    force_update: bool | None = None

    @field_validator("device_class")
    @classmethod
    def _class(cls, value: str | None) -> str | None:
        if value is not None and value not in BINARY_DEVICE_CLASSES:
            raise ValueError(f"not a binary_sensor device class: {value}")
        return value


class Switch(Entity):
    p: Literal["switch"]
    command_topic: str = Field(min_length=1)
    value_template: str | None = None
    payload_on: str = "ON"
    payload_off: str = "OFF"
    state_on: str | None = None
    state_off: str | None = None
    device_class: Literal["outlet", "switch"] | None = None
    optimistic: bool | None = None
    retain: bool | None = None


class Button(Entity):
    p: Literal["button"]
    command_topic: str = Field(min_length=1)
    command_template: str | None = None
    payload_press: str = "PRESS"
    device_class: Literal["identify", "restart", "update"] | None = None
    retain: bool | None = None


class Image(Entity):
    p: Literal["image"]
    image_topic: str | None = None
    url_topic: str | None = None
    url_template: str | None = None
    content_type: str | None = None
    image_encoding: Literal["b64"] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> "Image":
        if (self.image_topic is None) == (self.url_topic is None):
            raise ValueError("exactly one of image_topic and url_topic")
        if self.url_topic is not None and self.content_type is not None:
            raise ValueError("content_type cannot be used with url_topic")
        return self


Component = Annotated[Union[Sensor, BinarySensor, Switch, Button, Image], Field(discriminator="p")]


class DevicePayload(Strict):
    """The root of ``<prefix>/device/<object_id>/config``."""

    dev: Device
    o: Origin
    cmps: dict[str, Component] = Field(min_length=1)
    avty: list[Availability] | None = None
    availability_topic: str | None = None
    availability_mode: Literal["all", "any", "latest"] | None = None
    state_topic: str | None = None
    command_topic: str | None = None
    qos: Literal[0, 1, 2] | None = None
    encoding: str | None = None

    @model_validator(mode="after")
    def _checks(self) -> "DevicePayload":
        if self.avty is not None and self.availability_topic is not None:
            raise ValueError("availability and availability_topic are exclusive")
        uids = [c.unique_id for c in self.cmps.values()]
        if len(set(uids)) != len(uids):
            raise ValueError("unique_id values repeat")
        for cid, comp in self.cmps.items():
            if not ID.fullmatch(cid):
                raise ValueError(f"component id {cid!r} is not [a-zA-Z0-9_-]+")
            if isinstance(comp, (Sensor, BinarySensor, Switch)) and not (comp.state_topic or self.state_topic):
                raise ValueError(f"{cid} has no state_topic (own or shared)")
        return self

    def state_topic_of(self, cid: str) -> str | None:
        """The state topic component ``cid`` reads (its own, else the shared one)."""
        comp = self.cmps[cid]
        return comp.state_topic or self.state_topic


def validate(payload: dict[str, Any]) -> DevicePayload:
    """Validate a discovery payload (pydantic ValidationError when it breaks the documented schema)."""
    return DevicePayload.model_validate(payload)


_JINJA = jinja2.Environment(undefined=jinja2.StrictUndefined)


def render(comp: Any, state: dict[str, Any]) -> str:
    """What Home Assistant makes of ``state`` (a JSON state message) for component ``comp``: its
    ``value_template`` rendered with ``value_json``; checked against what the platform accepts.

    Raises:
        AssertionError: the rendered value is not a valid state of the platform.
        jinja2.UndefinedError: the template reads a key the state does not have.
    """
    value = _JINJA.from_string(comp.value_template).render(value_json=state) if comp.value_template else str(state)
    if isinstance(comp, Sensor):
        if value == "None":  # Home Assistant's PAYLOAD_NONE: the state becomes unknown
            return value
        if comp.device_class == "enum":
            assert value in comp.options, (value, comp.options)
        elif comp.device_class == "timestamp":
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            assert parsed.tzinfo is not None, f"a timestamp needs a time zone: {value}"
        elif comp.unit_of_measurement or comp.state_class:
            float(value)
    elif isinstance(comp, BinarySensor):
        assert value in (comp.payload_on, comp.payload_off), value
    elif isinstance(comp, Switch):
        assert value in (comp.state_on or comp.payload_on, comp.state_off or comp.payload_off), value
    return value
