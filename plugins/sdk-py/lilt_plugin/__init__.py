"""lilt_plugin: the Python SDK for Lilt plugins, mirroring the Rust SDK (plugins/sdk).

Strict settings (`parse_settings`), a small XML `Element` (parse and serialize stanzas,
`iq_result`, `error_reply`), the host a plugin talks to (`WasmHost` over the WIT imports inside
the server, `MemoryHost` in native tests), `Hooks` (configure once per arguments, events parsed,
bad XML passes) and `hook_handler`, which turns a plugin class into the `HookHandler` export
componentize-py expects.

Pure Python, standard library only, and no WIT import of its own: the plugin's app module
imports the `wit_world` interfaces its world names and passes them in, so a component imports
only what it uses. Tests: plugins/sdk-py/tests (`python3 -m unittest discover -s tests`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Optional, Union

CLIENT = "jabber:client"
STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
NICK = "http://jabber.org/protocol/nick"

# ---------------------------------------------------------------------------------------------
# Settings


def parse_settings(settings_json: str, defaults: dict[str, Any]) -> dict[str, Any]:
    """Parse settings JSON against `defaults`: `null` and `{}` give the defaults; an unknown
    key, or a value whose type differs from its default's, raises ValueError naming the key."""
    try:
        value = json.loads(settings_json)
    except ValueError as e:
        raise ValueError(f"settings are not JSON: {e}") from None
    out = dict(defaults)
    if value is None:
        return out
    if not isinstance(value, dict):
        raise ValueError("settings: expected an object")
    for key, v in value.items():
        if key not in defaults:
            known = ", ".join(f"`{k}`" for k in defaults) or "none"
            raise ValueError(f"settings: unknown field `{key}`, expected {known}")
        want, got = _json_type(defaults[key]), _json_type(v)
        if want != got:
            raise ValueError(f"settings: `{key}` must be a {want}, not a {got}")
        out[key] = v
    return out


def _json_type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


# ---------------------------------------------------------------------------------------------
# XML


def escape(s: str) -> str:
    """Escape text or an attribute value (either quote style)."""
    return (
        s.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("'", "&apos;")
        .replace('"', "&quot;")
    )


_ENTITIES = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}


def _unescape(s: str) -> str:
    def one(m: re.Match[str]) -> str:
        ref = m.group(1)
        if ref.startswith("#x"):
            return chr(int(ref[2:], 16))
        if ref.startswith("#"):
            return chr(int(ref[1:]))
        if ref in _ENTITIES:
            return _ENTITIES[ref]
        raise ValueError(f"unknown entity &{ref};")

    return re.sub(r"&([^;&]*);", one, s)


_NAME = r"[A-Za-z_][\w.:-]*"
_START = re.compile(rf"<({_NAME})((?:\s+{_NAME}\s*=\s*(?:'[^'<]*'|\"[^\"<]*\"))*)\s*(/?)>")
_ATTR = re.compile(rf"({_NAME})\s*=\s*(?:'([^'<]*)'|\"([^\"<]*)\")")
_END = re.compile(rf"</({_NAME})\s*>")
_MISC = re.compile(r"<!--.*?-->|<\?.*?\?>", re.S)


class Element:
    """An XML element with its namespace resolved, ordered attributes and child nodes
    (Elements and text strings)."""

    def __init__(self, name: str, ns: str) -> None:
        self.name = name
        self.ns = ns
        self.attrs: list[list[str]] = []
        self.nodes: list[Union[Element, str]] = []

    def with_attr(self, name: str, value: str) -> Element:
        self.set_attr(name, value)
        return self

    def with_child(self, child: Element) -> Element:
        self.nodes.append(child)
        return self

    def with_text(self, text: str) -> Element:
        self.nodes.append(str(text))
        return self

    def set_attr(self, name: str, value: str) -> None:
        for a in self.attrs:
            if a[0] == name:
                a[1] = str(value)
                return
        self.attrs.append([name, str(value)])

    def attr(self, name: str) -> Optional[str]:
        return next((v for k, v in self.attrs if k == name), None)

    def children(self) -> list[Element]:
        return [n for n in self.nodes if isinstance(n, Element)]

    def child(self, name: str, ns: str) -> Optional[Element]:
        return next((c for c in self.children() if c.name == name and c.ns == ns), None)

    def text(self) -> str:
        """Concatenated direct text."""
        return "".join(n for n in self.nodes if isinstance(n, str))

    def to_xml(self, parent_ns: Optional[str] = None) -> str:
        """Serialize, declaring every namespace needed (as the Rust SDK does)."""
        out = f"<{self.name}"
        if parent_ns != self.ns:
            out += f" xmlns='{escape(self.ns)}'"
        for k, v in self.attrs:
            out += f" {k}='{escape(v)}'"
        if not self.nodes:
            return out + "/>"
        out += ">"
        for n in self.nodes:
            out += n.to_xml(self.ns) if isinstance(n, Element) else escape(n)
        return out + f"</{self.name}>"

    @staticmethod
    def parse(xml: str) -> Element:
        """Parse one element. Raises ValueError when the text is not one well-formed element
        or uses an undeclared prefix; comments, PIs and an XML declaration are skipped."""
        scopes: list[list[tuple[str, str]]] = []
        stack: list[tuple[Element, str]] = []
        done: Optional[Element] = None

        def resolve(prefix: str) -> str:
            if prefix == "xml":
                return "http://www.w3.org/XML/1998/namespace"
            for scope in reversed(scopes):
                for p, uri in reversed(scope):
                    if p == prefix:
                        return uri
            if prefix == "":
                return ""
            raise ValueError(f"undeclared prefix {prefix!r}")

        def close(el: Element) -> Optional[Element]:
            if stack:
                stack[-1][0].nodes.append(el)
                return None
            return el

        i = 0
        while i < len(xml):
            if done is not None:
                if _MISC.sub("", xml[i:]).strip():
                    raise ValueError("content after the element")
                break
            lt = xml.find("<", i)
            if lt != i:
                end = len(xml) if lt < 0 else lt
                text = xml[i:end]
                if stack:
                    _push_text(stack[-1][0], _unescape(text))
                elif text.strip():
                    raise ValueError("text outside the element")
                i = end
                continue
            if xml.startswith("<!--", i):
                end = xml.find("-->", i)
                if end < 0:
                    raise ValueError("unterminated comment")
                i = end + 3
            elif xml.startswith("<?", i):
                end = xml.find("?>", i)
                if end < 0:
                    raise ValueError("unterminated processing instruction")
                i = end + 2
            elif xml.startswith("<![CDATA[", i):
                end = xml.find("]]>", i)
                if end < 0 or not stack:
                    raise ValueError("bad CDATA section")
                _push_text(stack[-1][0], xml[i + 9 : end])
                i = end + 3
            elif xml.startswith("</", i):
                m = _END.match(xml, i)
                if not m:
                    raise ValueError("bad end tag")
                if not stack or stack[-1][1] != m.group(1):
                    raise ValueError(f"unbalanced end tag </{m.group(1)}>")
                el, _ = stack.pop()
                scopes.pop()
                done = close(el)
                i = m.end()
            else:
                m = _START.match(xml, i)
                if not m:
                    raise ValueError(f"bad start tag at {i}")
                decls: list[tuple[str, str]] = []
                attrs: list[list[str]] = []
                for a in _ATTR.finditer(m.group(2)):
                    key = a.group(1)
                    value = _unescape(a.group(2) if a.group(2) is not None else a.group(3))
                    if key == "xmlns":
                        decls.append(("", value))
                    elif key.startswith("xmlns:"):
                        decls.append((key[6:], value))
                    elif any(k == key for k, _ in attrs):
                        raise ValueError(f"duplicate attribute {key}")
                    else:
                        attrs.append([key, value])
                scopes.append(decls)
                qname = m.group(1)
                prefix, _, local = qname.rpartition(":")
                el = Element(local, resolve(prefix))
                el.attrs = attrs
                i = m.end()
                if m.group(3) == "/":
                    scopes.pop()
                    done = close(el)
                else:
                    stack.append((el, qname))
        if done is None:
            raise ValueError("no complete element")
        return done


def _push_text(el: Element, text: str) -> None:
    if el.nodes and isinstance(el.nodes[-1], str):
        el.nodes[-1] += text
    else:
        el.nodes.append(text)


def _copy_swapped(src: Element, dst: Element) -> None:
    if src.attr("id") is not None:
        dst.set_attr("id", src.attr("id"))
    if src.attr("from") is not None:
        dst.set_attr("to", src.attr("from"))
    if src.attr("to") is not None:
        dst.set_attr("from", src.attr("to"))


def iq_result(iq: Element, payload: Optional[Element] = None) -> Element:
    """A reply to an iq: `result` with `payload`, addresses swapped."""
    r = Element("iq", CLIENT).with_attr("type", "result")
    _copy_swapped(iq, r)
    if payload is not None:
        r.with_child(payload)
    return r


def error_reply(stanza: Element, condition: str) -> Element:
    """An error reply with `condition` (type `cancel`)."""
    r = Element(stanza.name, CLIENT).with_attr("type", "error")
    _copy_swapped(stanza, r)
    return r.with_child(
        Element("error", CLIENT).with_attr("type", "cancel").with_child(Element(condition, STANZAS))
    )


def display_name(presence: Element) -> Optional[str]:
    """The display name a Jitsi client puts in its presence (`<nick xmlns=…nick>`)."""
    nick = presence.child("nick", NICK)
    return nick.text() if nick is not None else None


# ---------------------------------------------------------------------------------------------
# Verdicts and events


@dataclass(frozen=True)
class Verdict:
    """A hook's answer: `Verdict.PASS`, `Verdict.HANDLED`, `Verdict.reject(condition, text)`
    or `Verdict.replace(stanza)`."""

    tag: str
    condition: Optional[str] = None
    text: Optional[str] = None
    stanza: Optional[str] = None

    @staticmethod
    def reject(condition: str, text: Optional[str] = None) -> Verdict:
        return Verdict("reject", condition=condition, text=text)

    @staticmethod
    def replace(stanza: Union[Element, str]) -> Verdict:
        return Verdict("replace", stanza=stanza.to_xml() if isinstance(stanza, Element) else stanza)


Verdict.PASS = Verdict("pass")  # type: ignore[attr-defined]
Verdict.HANDLED = Verdict("handled")  # type: ignore[attr-defined]


@dataclass
class Event:
    """An event as the plugin sees it. `kind` is the WIT name (`iq`, `occupant-pre-join`, …);
    `stanza` is set for stanza events, `room`/`occupant`/`presence` for occupant events
    (`presence` parsed), `room`/`creator` for room-pre-create, `room` for the others."""

    kind: str
    stanza: Optional[Element] = None
    room: Any = None
    occupant: Any = None
    presence: Optional[Element] = None
    creator: Optional[str] = None


_STANZA_EVENTS = {"message", "presence", "iq"}
_OCCUPANT_EVENTS = {"occupant-pre-join", "occupant-joined", "occupant-left"}


def parse_event(kind: str, value: Any) -> Optional[Event]:
    """The event of WIT kind `kind` with payload `value`; None when its XML does not parse."""
    try:
        if kind in _STANZA_EVENTS:
            return Event(kind, stanza=Element.parse(value))
        if kind in _OCCUPANT_EVENTS:
            return Event(
                kind, room=value.room, occupant=value.occupant, presence=Element.parse(value.presence)
            )
        if kind == "room-pre-create":
            return Event(kind, room=value.room, creator=value.creator)
        return Event(kind, room=value)
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------------
# Hosts


def _err_text(e: BaseException) -> str:
    # componentize-py raises a result's `err` as componentize_py_types.Err(value).
    v = getattr(e, "value", e)
    if isinstance(v, str):
        return v
    inner = getattr(v, "value", None)
    return type(v).__name__ + (f": {inner}" if inner is not None else "")


class WasmHost:
    """The host inside the server, over the `wit_world.imports` modules the app passes in:
    `WasmHost(stanzas=stanzas, kv=kv, timers=timers, clock=clock, host=host)`; any may be left
    out, and calling into one left out raises. Same methods as `MemoryHost`."""

    def __init__(self, *, host=None, kv=None, clock=None, stanzas=None, timers=None) -> None:
        self._host, self._kv, self._clock, self._stanzas, self._timers = host, kv, clock, stanzas, timers

    @staticmethod
    def _need(iface: Any, name: str) -> Any:
        if iface is None:
            raise RuntimeError(f"this plugin's world does not import lilt:plugin/{name}")
        return iface

    def get(self, key: str) -> Optional[bytes]:
        return self._need(self._kv, "kv").get(key)

    def set(self, key: str, value: Union[bytes, str]) -> None:
        try:
            self._need(self._kv, "kv").set(key, value.encode() if isinstance(value, str) else bytes(value))
        except RuntimeError:
            raise
        except Exception as e:
            raise RuntimeError(_err_text(e)) from None

    def delete(self, key: str) -> None:
        self._need(self._kv, "kv").delete(key)

    def keys(self, prefix: str) -> list[str]:
        return list(self._need(self._kv, "kv").list_keys(prefix))

    def now_ms(self) -> int:
        return int(self._need(self._clock, "clock").now_unix_millis())

    def send(self, stanza: Union[Element, str]) -> None:
        stanzas = self._need(self._stanzas, "stanzas")
        try:
            stanzas.send(stanza.to_xml() if isinstance(stanza, Element) else stanza)
        except Exception as e:
            raise RuntimeError(_err_text(e)) from None

    def set_timer(self, delay_ms: int, tag: str) -> None:
        timers = self._need(self._timers, "timers")
        try:
            timers.set_timer(int(delay_ms), tag)
        except Exception as e:
            raise RuntimeError(_err_text(e)) from None

    def log(self, level: str, message: str) -> None:
        if self._host is not None:
            self._host.log(getattr(self._host.LogLevel, level.upper()), message)


class MemoryHost:
    """A host in memory, for native tests: records what was sent, the timers and the log."""

    def __init__(self) -> None:
        self.kv: dict[str, bytes] = {}
        self.now = 0
        self.sent: list[str] = []
        self.timers: list[tuple[int, str]] = []
        self.logs: list[str] = []
        self.refuse_send: Optional[str] = None

    def get(self, key: str) -> Optional[bytes]:
        return self.kv.get(key)

    def set(self, key: str, value: Union[bytes, str]) -> None:
        self.kv[key] = value.encode() if isinstance(value, str) else bytes(value)

    def delete(self, key: str) -> None:
        self.kv.pop(key, None)

    def keys(self, prefix: str) -> list[str]:
        return sorted(k for k in self.kv if k.startswith(prefix))

    def now_ms(self) -> int:
        return self.now

    def send(self, stanza: Union[Element, str]) -> None:
        if self.refuse_send is not None:
            raise RuntimeError(self.refuse_send)
        self.sent.append(stanza.to_xml() if isinstance(stanza, Element) else stanza)

    def set_timer(self, delay_ms: int, tag: str) -> None:
        self.timers.append((int(delay_ms), tag))

    def log(self, level: str, message: str) -> None:
        self.logs.append(f"{level.upper()} {message}")

    def take_sent(self) -> list[str]:
        sent, self.sent = self.sent, []
        return sent


# ---------------------------------------------------------------------------------------------
# The hook-handler export


class Hooks:
    """Runs a plugin class with `configure(vhost, component, settings_json)` (a classmethod
    returning an instance; raising refuses the configuration) and optional
    `subscriptions()` (a list of `(kind, priority)`), `handle(host, event)` (a Verdict) and
    `on_timer(host, tag)`. `configure` runs again only when its arguments change."""

    def __init__(self, plugin_cls: Any, host: Any) -> None:
        self._cls, self.host = plugin_cls, host
        self._key: Any = None
        self.plugin: Any = None

    def configure(self, vhost: str, component: Optional[str], settings_json: str) -> None:
        key = (vhost, component, settings_json)
        if key == self._key and self.plugin is not None:
            return
        self.plugin, self._key = None, None
        self.plugin = self._cls.configure(vhost, component, settings_json)
        self._key = key

    def _get(self) -> Any:
        if self.plugin is None:
            raise RuntimeError("not configured")
        return self.plugin

    def subscriptions(self) -> list[tuple[str, int]]:
        p = self._get()
        return list(p.subscriptions()) if hasattr(p, "subscriptions") else []

    def handle(self, kind: str, value: Any) -> Verdict:
        p = self._get()
        event = parse_event(kind, value)
        if event is None or not hasattr(p, "handle"):
            return Verdict.PASS  # type: ignore[attr-defined]
        return p.handle(self.host, event) or Verdict.PASS  # type: ignore[attr-defined]

    def on_timer(self, tag: str) -> None:
        p = self._get()
        if hasattr(p, "on_timer"):
            p.on_timer(self.host, tag)


def _kebab(cls_name: str) -> str:
    # Event_RoomPreCreate -> room-pre-create
    return re.sub(r"(?<!^)([A-Z])", r"-\1", cls_name.split("_", 1)[1]).lower()


def hook_handler(plugin_cls: Any, host: Any, hook_types: Any, base: type = object) -> type:
    """The `HookHandler` class componentize-py exports, for `plugin_cls` with `host`:
    in the app module, `HookHandler = hook_handler(MyPlugin, WasmHost(...), hook_types,
    exports.HookHandler)`. Converts WIT events, subscriptions and verdicts to and from the
    SDK's, and a configure error to the WIT `err`."""
    hooks = Hooks(plugin_cls, host)

    def to_wit(v: Verdict) -> Any:
        if v.tag == "handled":
            return hook_types.Verdict_Handled()
        if v.tag == "reject":
            return hook_types.Verdict_Reject(hook_types.Rejection(v.condition, v.text))
        if v.tag == "replace":
            return hook_types.Verdict_Replace(v.stanza)
        return hook_types.Verdict_Pass()

    class HookHandler(base):  # type: ignore[misc, valid-type]
        def configure(self, vhost: str, component: Optional[str], settings_json: str) -> None:
            try:
                hooks.configure(vhost, component, settings_json)
            except Exception as e:
                from componentize_py_types import Err

                raise Err(str(e)) from None

        def subscriptions(self) -> list:
            return [
                hook_types.Subscription(hook_types.EventKind[kind.upper().replace("-", "_")], priority)
                for kind, priority in hooks.subscriptions()
            ]

        def handle(self, event: Any) -> Any:
            return to_wit(hooks.handle(_kebab(type(event).__name__), event.value))

        def on_timer(self, tag: str) -> None:
            hooks.on_timer(tag)

    return HookHandler
