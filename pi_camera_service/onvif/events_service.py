"""The ONVIF event service (``tev`` + WS-BaseNotification ``wsnt``): event properties and PullPoint
subscriptions (create, pull, renew, unsubscribe) over :mod:`pi_camera_service.onvif.events`."""

from __future__ import annotations

import time
from typing import Any

from pi_camera_service.onvif import events as ev
from pi_camera_service.onvif.calls import SUBSCRIPTION_PATH, VIDEO_SOURCE_TOKEN, Call
from pi_camera_service.onvif.soap import NS, element, find, number, sender_fault, sub, text


def _termination_fields(parent: Any, prefix: str, subscription: ev.Subscription) -> None:
    sub(parent, f"{prefix}:CurrentTime", ev.iso(time.time()))
    sub(parent, f"{prefix}:TerminationTime", ev.iso(subscription.termination))


async def create_pull_point(call: Call) -> Any:
    if find(call.soap.body, "tev:Filter") is not None:
        expr = text(call.soap.body, "tev:Filter/wsnt:TopicExpression")
        if expr and "FaceDetect" not in expr and "RuleEngine" not in expr and expr.strip() not in ("tns1:*", "*"):
            raise sender_fault(f"no topic matches {expr[:80]!r}; this camera publishes {ev.TOPIC}",
                               "ter:InvalidArgVal", "ter:InvalidTopicExpression")
    subscription = call.ctx.events.create(text(call.soap.body, "tev:InitialTerminationTime"))
    r = element("tev:CreatePullPointSubscriptionResponse")
    ref = sub(r, "tev:SubscriptionReference")
    sub(ref, "wsa:Address", f"{call.base}{SUBSCRIPTION_PATH}/{subscription.id}")
    sub(r, "wsnt:CurrentTime", ev.iso(time.time()))
    sub(r, "wsnt:TerminationTime", ev.iso(subscription.termination))
    return r


def _sid(call: Call) -> str:
    if not call.path_id:
        raise sender_fault(f"send this to the subscription's address ({SUBSCRIPTION_PATH}/<id>)",
                           "ter:InvalidArgVal", "ter:ResourceUnknown")
    return call.path_id


async def pull_messages(call: Call) -> Any:
    sid = _sid(call)
    timeout_text = text(call.soap.body, "tev:Timeout") or "PT10S"
    timeout = ev.parse_duration(timeout_text)
    limit = number(call.soap.body, "tev:MessageLimit") or 10
    subscription, messages = await call.ctx.events.pull(sid, timeout, int(limit))
    r = element("tev:PullMessagesResponse")
    _termination_fields(r, "tev", subscription)
    for m in messages:
        n = sub(r, "wsnt:NotificationMessage")
        sub(n, "wsnt:Topic", ev.TOPIC, Dialect=ev.TOPIC_DIALECT)
        body = sub(n, "wsnt:Message")
        msg = sub(body, "tt:Message", UtcTime=ev.iso(m.utc), PropertyOperation=m.operation)
        src = sub(msg, "tt:Source")
        sub(src, "tt:SimpleItem", Name="Source", Value=VIDEO_SOURCE_TOKEN)
        data = sub(msg, "tt:Data")
        sub(data, "tt:SimpleItem", Name="State", Value=m.state)
    return r


async def renew(call: Call) -> Any:
    subscription = call.ctx.events.renew(_sid(call), text(call.soap.body, "wsnt:TerminationTime"))
    r = element("wsnt:RenewResponse")
    sub(r, "wsnt:TerminationTime", ev.iso(subscription.termination))
    sub(r, "wsnt:CurrentTime", ev.iso(time.time()))
    return r


async def unsubscribe(call: Call) -> Any:
    call.ctx.events.remove(_sid(call))
    return element("wsnt:UnsubscribeResponse")


async def set_synchronization_point(call: Call) -> Any:
    sid = _sid(call)
    subscription = call.ctx.events.get(sid)
    subscription.queue.append(ev.Message(time.time(), "Initialized", call.ctx.events.state))
    subscription.wakeup.set()
    return element("tev:SetSynchronizationPointResponse")


async def get_event_properties(call: Call) -> Any:
    r = element("tev:GetEventPropertiesResponse")
    sub(r, "tev:TopicNamespaceLocation", "http://www.onvif.org/onvif/ver10/topics/topicns.xml")
    sub(r, "wsnt:FixedTopicSet", True)
    topics = sub(r, "wstop:TopicSet")
    rule = etree_sub(topics, "tns1:RuleEngine", topic=True)
    detector = etree_sub(rule, "tns1:MyRuleDetector")
    face = etree_sub(detector, "tns1:FaceDetect", topic=True)
    desc = sub(face, "tt:MessageDescription", IsProperty=True)
    src = sub(desc, "tt:Source")
    sub(src, "tt:SimpleItemDescription", Name="Source", Type="tt:ReferenceToken")
    data = sub(desc, "tt:Data")
    sub(data, "tt:SimpleItemDescription", Name="State", Type="xs:boolean")
    sub(r, "wsnt:TopicExpressionDialect", ev.TOPIC_DIALECT)
    sub(r, "tev:MessageContentFilterDialect", "http://www.onvif.org/ver10/tev/messageContentFilter/ItemFilter")
    sub(r, "tev:MessageContentSchemaLocation", "http://www.onvif.org/onvif/ver10/schema/onvif.xsd")
    return r


def etree_sub(parent: Any, tag: str, topic: bool = False) -> Any:
    """A topic-tree element (``wstop:topic="true"`` on topics that carry messages)."""
    el = sub(parent, tag)
    if topic:
        el.set(f"{{{NS['wstop']}}}topic", "true")
    return el
