"""The SOAP 1.2 layer of the ONVIF services: safe parsing, response envelopes and faults.

Requests are parsed with lxml under a parser that resolves no entities, loads no DTD, opens no
network connection and refuses huge trees; a document with a ``<!DOCTYPE`` is refused outright
(SOAP 1.2 part 1 §5: "The XML infoset of a SOAP message MUST NOT contain a document type
declaration"). Bodies are capped at :data:`MAX_REQUEST_BYTES` before parsing, so an unauthenticated
request costs bounded memory and CPU.

Faults follow SOAP 1.2 part 1 §5.4 with the ONVIF subcodes of the ONVIF Core Specification §5.11
(``ter:InvalidArgVal``, ``ter:ActionNotSupported``, ``ter:NotAuthorized``...). A fault is answered
with HTTP 400 (sender faults), 401 (``ter:NotAuthorized``, which the ONVIF core spec §5.12 maps to
HTTP 401) or 500 (receiver faults, as SOAP 1.2 part 2 §7.5.1 requires for ``env:Receiver``), always
with a SOAP envelope body, never an unhandled error page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lxml import etree

#: largest accepted request body, bytes (ONVIF requests are a few KB; SetImagingSettings ~2 KB)
MAX_REQUEST_BYTES = 64 * 1024
#: deepest accepted element nesting (real requests stay under 15)
MAX_DEPTH = 32

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "xs": "http://www.w3.org/2001/XMLSchema",
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
    "tds": "http://www.onvif.org/ver10/device/wsdl",
    "trt": "http://www.onvif.org/ver10/media/wsdl",
    "timg": "http://www.onvif.org/ver20/imaging/wsdl",
    "tev": "http://www.onvif.org/ver10/events/wsdl",
    "tt": "http://www.onvif.org/ver10/schema",
    "ter": "http://www.onvif.org/ver10/error",
    "wsse": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd",
    "wsu": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd",
    "wsa": "http://www.w3.org/2005/08/addressing",
    "wsnt": "http://docs.oasis-open.org/wsn/b-2",
    "wstop": "http://docs.oasis-open.org/wsn/t-1",
    "tns1": "http://www.onvif.org/ver10/topics",
}

SOAP_CONTENT_TYPE = "application/soap+xml; charset=utf-8"

_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
    huge_tree=False, remove_comments=True, remove_pis=True,
)


def qname(prefixed: str) -> str:
    """``"tt:Name"`` -> ``"{http://www.onvif.org/ver10/schema}Name"`` (Clark notation)."""
    prefix, _, local = prefixed.partition(":")
    return f"{{{NS[prefix]}}}{local}"


@dataclass
class Fault(Exception):
    """A SOAP fault to answer.

    Attributes:
        code: ``Sender`` or ``Receiver`` (SOAP 1.2 env:Code).
        subcode: ONVIF subcode(s), outermost first, e.g. ``("ter:InvalidArgVal", "ter:NoSource")``.
        reason: human-readable text saying what is wrong and what is allowed.
        http_status: 400 for sender faults, 401 for ``ter:NotAuthorized``, 429 over the login failure
            budget, 500 for receiver faults.
        retry_after: s, sent as ``Retry-After`` (with 429).
    """

    code: str
    subcode: tuple[str, ...]
    reason: str
    http_status: int = 400
    retry_after: int | None = None

    def __str__(self) -> str:
        return f"{self.code}/{'/'.join(self.subcode)}: {self.reason}"


def sender_fault(reason: str, *subcode: str) -> Fault:
    """An ``env:Sender`` fault (the request is wrong), default subcode ``ter:InvalidArgVal``."""
    return Fault("Sender", subcode or ("ter:InvalidArgVal",), reason, 400)


def not_authorized(reason: str) -> Fault:
    """``env:Sender/ter:NotAuthorized`` (HTTP 401), ONVIF Core §5.12.2."""
    return Fault("Sender", ("ter:NotAuthorized",), reason, 401)


def action_not_supported(reason: str) -> Fault:
    """``env:Receiver/ter:ActionNotSupported`` (ONVIF Core §5.11.2.3)."""
    return Fault("Receiver", ("ter:ActionNotSupported",), reason, 500)


@dataclass
class Request:
    """A parsed SOAP request.

    Attributes:
        header: the ``s:Header`` element or None.
        body: the first child of ``s:Body`` (the operation element).
        operation: the operation element's local name (``GetProfiles``).
        namespace: the operation element's namespace URI.
    """

    header: Any
    body: Any
    operation: str
    namespace: str


def parse_request(data: bytes) -> Request:
    """Parse a SOAP 1.2 (or 1.1) request envelope.

    Raises:
        Fault: body too large, not well-formed XML, a DOCTYPE, too deep, not a SOAP envelope, or an
            empty ``Body``; the reason says which.
    """
    if len(data) > MAX_REQUEST_BYTES:
        raise sender_fault(f"request of {len(data)} bytes is larger than the {MAX_REQUEST_BYTES} bytes allowed",
                           "ter:InvalidArgs")
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise sender_fault("a SOAP message must not contain a document type declaration (SOAP 1.2 part 1 §5)",
                           "ter:InvalidArgs")
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise sender_fault(f"not well-formed XML: {exc}", "ter:InvalidArgs") from None
    if root is None:
        raise sender_fault("empty request; send a SOAP 1.2 envelope", "ter:InvalidArgs")
    if _depth(root) > MAX_DEPTH:
        raise sender_fault(f"elements nested deeper than {MAX_DEPTH} levels", "ter:InvalidArgs")
    soap11 = "http://schemas.xmlsoap.org/soap/envelope/"
    if root.tag not in (qname("s:Envelope"), f"{{{soap11}}}Envelope"):
        raise sender_fault(f"expected a SOAP Envelope ({NS['s']}), got {root.tag}", "ter:InvalidArgs")
    env_ns = etree.QName(root).namespace
    header = root.find(f"{{{env_ns}}}Header")
    body = root.find(f"{{{env_ns}}}Body")
    if body is None or len(body) == 0:
        raise sender_fault("the SOAP Body is missing or empty; it must hold one operation", "ter:InvalidArgs")
    op = body[0]
    name = etree.QName(op)
    return Request(header, op, name.localname, name.namespace or "")


def _depth(root: Any) -> int:
    deepest = 0
    stack = [(root, 1)]
    while stack:
        el, d = stack.pop()
        deepest = max(deepest, d)
        if d > MAX_DEPTH:
            return d
        stack.extend((child, d + 1) for child in el)
    return deepest


# ----------------------------------------------------------------------------------- building XML
def sub(parent: Any, tag: str, text: Any = None, **attrib: Any) -> Any:
    """Append ``<tag>`` (prefixed name, e.g. ``tt:Width``) to ``parent``; ``text`` is str()-ed
    (booleans as ``true``/``false``); attributes are plain names."""
    el = etree.SubElement(parent, qname(tag), {k: _text(v) for k, v in attrib.items() if v is not None})
    if text is not None:
        el.text = _text(text)
    return el


def element(tag: str, text: Any = None, **attrib: Any) -> Any:
    """A new root element ``<tag>`` (see :func:`sub`)."""
    el = etree.Element(qname(tag), {k: _text(v) for k, v in attrib.items() if v is not None}, nsmap=NS)
    if text is not None:
        el.text = _text(text)
    return el


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def envelope(body_child: Any, headers: list[Any] | None = None) -> bytes:
    """Serialise a SOAP 1.2 envelope around ``body_child`` (UTF-8 bytes with XML declaration)."""
    env = etree.Element(qname("s:Envelope"), nsmap=NS)
    if headers:
        header = sub(env, "s:Header")
        for h in headers:
            header.append(h)
    body = sub(env, "s:Body")
    body.append(body_child)
    return etree.tostring(env, xml_declaration=True, encoding="utf-8")


def fault_envelope(fault: Fault) -> bytes:
    """The SOAP 1.2 fault envelope of ``fault`` (SOAP 1.2 part 1 §5.4)."""
    f = element("s:Fault")
    code = sub(f, "s:Code")
    sub(code, "s:Value", f"s:{fault.code}")
    parent = code
    for sc in fault.subcode:
        parent = sub(parent, "s:Subcode")
        sub(parent, "s:Value", sc)
    reason = sub(f, "s:Reason")
    text = sub(reason, "s:Text", fault.reason)
    text.set("{http://www.w3.org/XML/1998/namespace}lang", "en")
    return envelope(f)


# ----------------------------------------------------------------------------------- reading XML
def find(el: Any, path: str) -> Any:
    """First descendant matching ``path`` (prefixed names, ``/``-separated; ``*`` any namespace
    is written ``*:Name``), or None. Matching by local name tolerates clients that put an element in
    a neighbouring ONVIF namespace."""
    if el is None:
        return None
    found = el.xpath("./" + "/".join(_step(p) for p in path.split("/")))
    return found[0] if found else None


def _step(part: str) -> str:
    local = part.split(":", 1)[-1]
    return f"*[local-name()='{local}']"


def text(el: Any, path: str, default: str | None = None) -> str | None:
    """Stripped text of :func:`find` ``(el, path)``, or ``default`` when absent."""
    node = find(el, path)
    if node is None or node.text is None:
        return default
    return node.text.strip()


def number(el: Any, path: str) -> float | None:
    """:func:`text` as a finite float, None when absent.

    Raises:
        Fault: present but not a finite number.
    """
    value = text(el, path)
    if value is None or value == "":
        return None
    try:
        out = float(value)
    except ValueError:
        raise sender_fault(f"{path.split('/')[-1].split(':')[-1]}={value!r} is not a number") from None
    if out != out or out in (float("inf"), float("-inf")):
        raise sender_fault(f"{path.split('/')[-1].split(':')[-1]}={value!r} is not a finite number")
    return out
