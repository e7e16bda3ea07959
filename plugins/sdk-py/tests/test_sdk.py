"""Native tests of lilt_plugin under plain CPython: settings, XML round trips, replies, the
MemoryHost, the Hooks runner (configure caching, event parsing, bad XML passes) and WasmHost's
error mapping. Run: cd plugins/sdk-py && python3 -m unittest discover -s tests -t ."""

import sys
import unittest
from dataclasses import dataclass
from enum import Enum
from types import ModuleType, SimpleNamespace

from lilt_plugin import (
    CLIENT,
    Element,
    Hooks,
    MemoryHost,
    Verdict,
    WasmHost,
    error_reply,
    hook_handler,
    iq_result,
    parse_settings,
)


class Settings(unittest.TestCase):
    def test_defaults_overrides_and_refusals(self):
        defaults = {"welcome": "Welcome!", "size": 3}
        self.assertEqual(parse_settings("null", defaults), defaults)
        self.assertEqual(parse_settings("{}", defaults), defaults)
        self.assertEqual(parse_settings('{"size":4}', defaults), {"welcome": "Welcome!", "size": 4})
        with self.assertRaisesRegex(ValueError, "unknown field `welcom`"):
            parse_settings('{"welcom":"x"}', defaults)
        with self.assertRaisesRegex(ValueError, "`size` must be a number"):
            parse_settings('{"size":"4"}', defaults)
        with self.assertRaisesRegex(ValueError, "`size` must be a number, not a boolean"):
            parse_settings('{"size":true}', defaults)
        with self.assertRaisesRegex(ValueError, "expected an object"):
            parse_settings("[1]", defaults)
        with self.assertRaisesRegex(ValueError, "not JSON"):
            parse_settings("{", defaults)


class Xml(unittest.TestCase):
    def test_parse_and_serialize_as_the_rust_sdk(self):
        e = Element.parse(
            "<?xml version='1.0'?><message xmlns='jabber:client' xmlns:j=\"urn:j\" from='a@b/c'>"
            "<!-- c --><body>1 &lt; 2 &amp;&#x21;</body><j:x a=\"&quot;q&quot;\"/><![CDATA[<raw>]]></message>"
        )
        self.assertEqual((e.name, e.ns), ("message", CLIENT))
        self.assertEqual(e.child("body", CLIENT).text(), "1 < 2 &!")
        self.assertEqual(e.child("x", "urn:j").attr("a"), '"q"')
        self.assertEqual(e.text(), "<raw>")
        self.assertEqual(
            e.to_xml(),
            "<message xmlns='jabber:client' from='a@b/c'><body>1 &lt; 2 &amp;!</body>"
            "<x xmlns='urn:j' a='&quot;q&quot;'/>&lt;raw&gt;</message>",
        )
        self.assertEqual(Element.parse(e.to_xml()).to_xml(), e.to_xml())
        for bad in ["", "<a>", "<a></b>", "<a/><b/>", "<p:a/>", "<a x='1' x='2'/>", "<a>&nope;</a>", "text"]:
            with self.assertRaises(ValueError, msg=bad):
                Element.parse(bad)

    def test_replies_swap_the_addresses(self):
        iq = Element.parse("<iq xmlns='jabber:client' type='get' id='7' from='a@b/c' to='b'><q xmlns='urn:q'/></iq>")
        self.assertEqual(iq_result(iq).to_xml(), "<iq xmlns='jabber:client' type='result' id='7' to='a@b/c' from='b'/>")
        self.assertEqual(
            error_reply(iq, "not-allowed").to_xml(),
            "<iq xmlns='jabber:client' type='error' id='7' to='a@b/c' from='b'><error type='cancel'>"
            "<not-allowed xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>",
        )


class Echo:
    configured = 0

    @classmethod
    def configure(cls, vhost, component, settings_json):
        cls.configured += 1
        e = cls()
        e.prefix = parse_settings(settings_json, {"prefix": ""})["prefix"]
        return e

    def subscriptions(self):
        return [("message", 5)]

    def handle(self, host, event):
        if event.kind != "message":
            return Verdict.PASS
        body = event.stanza.child("body", CLIENT).text()
        host.set("last", body)
        host.set_timer(1000, "later")
        host.send(
            Element("message", CLIENT)
            .with_attr("to", event.stanza.attr("from"))
            .with_child(Element("body", CLIENT).with_text(self.prefix + body))
        )
        return Verdict.HANDLED

    def on_timer(self, host, tag):
        host.log("info", f"timer {tag}")


class Runner(unittest.TestCase):
    def test_hooks_configure_once_events_and_verdicts(self):
        host = MemoryHost()
        hooks = Hooks(Echo, host)
        hooks.configure("b", None, '{"prefix":"> "}')
        hooks.configure("b", None, '{"prefix":"> "}')
        self.assertEqual(Echo.configured, 1)
        with self.assertRaisesRegex(ValueError, "unknown field `prefx`"):
            hooks.configure("b", None, '{"prefx":1}')
        hooks.configure("b", None, '{"prefix":"> "}')
        self.assertEqual(hooks.subscriptions(), [("message", 5)])
        v = hooks.handle("message", "<message xmlns='jabber:client' from='a@b/c'><body>hi</body></message>")
        self.assertEqual(v, Verdict.HANDLED)
        self.assertEqual(host.take_sent(), ["<message xmlns='jabber:client' to='a@b/c'><body>&gt; hi</body></message>"])
        self.assertEqual(host.get("last"), b"hi")
        self.assertEqual(host.timers, [(1000, "later")])
        self.assertEqual(hooks.handle("message", "<message><body>"), Verdict.PASS)
        self.assertEqual(hooks.handle("room-created", SimpleNamespace(jid="r@c")), Verdict.PASS)
        hooks.on_timer("later")
        self.assertEqual(host.logs, ["INFO timer later"])
        self.assertEqual(Verdict.reject("not-allowed", "no").condition, "not-allowed")

    def test_wasm_host_maps_errors_and_absent_imports(self):
        calls = []

        class Err(Exception):
            def __init__(self, value):
                self.value = value

        def send(xml):
            calls.append(xml)
            if "evil" in xml:
                raise Err("from outside the plugin domains")

        host = WasmHost(stanzas=SimpleNamespace(send=send))
        host.send(Element("message", CLIENT))
        self.assertEqual(calls, ["<message xmlns='jabber:client'/>"])
        with self.assertRaisesRegex(RuntimeError, "outside the plugin domains"):
            host.send("<message from='evil'/>")
        with self.assertRaisesRegex(RuntimeError, "does not import lilt:plugin/kv"):
            host.get("k")


def fake_hook_types():
    """The shapes componentize-py generates for lilt:plugin/hook-types (names as generated)."""

    class EventKind(Enum):
        MESSAGE = 0
        IQ = 2
        ROOM_PRE_CREATE = 3

    def record(name, *fields):
        return dataclass(type(name, (), {"__annotations__": {f: object for f in fields}}))

    return SimpleNamespace(
        EventKind=EventKind,
        Subscription=record("Subscription", "kind", "priority"),
        Rejection=record("Rejection", "condition", "text"),
        RoomCreation=record("RoomCreation", "room", "creator"),
        Event_Message=record("Event_Message", "value"),
        Event_Iq=record("Event_Iq", "value"),
        Event_RoomPreCreate=record("Event_RoomPreCreate", "value"),
        Verdict_Pass=record("Verdict_Pass"),
        Verdict_Handled=record("Verdict_Handled"),
        Verdict_Reject=record("Verdict_Reject", "value"),
        Verdict_Replace=record("Verdict_Replace", "value"),
    )


class Gate:
    """Refuses rooms named `x`, rewrites iqs, handles messages."""

    @classmethod
    def configure(cls, vhost, component, settings_json):
        parse_settings(settings_json, {})
        return cls()

    def subscriptions(self):
        return [("room-pre-create", 10), ("iq", -1)]

    def handle(self, host, event):
        if event.kind == "room-pre-create":
            return Verdict.reject("not-allowed", f"{event.creator} may not") if event.room == "x" else None
        if event.kind == "iq":
            return Verdict.replace(event.stanza.with_attr("seen", "1"))
        return Verdict.HANDLED


class WitExport(unittest.TestCase):
    def test_hook_handler_converts_to_and_from_the_wit_shapes(self):
        ht = fake_hook_types()

        class Err(Exception):
            def __init__(self, value):
                self.value = value

        fake = ModuleType("componentize_py_types")
        fake.Err = Err
        sys.modules["componentize_py_types"] = fake
        try:
            handler = hook_handler(Gate, MemoryHost(), ht)()
            with self.assertRaises(Err) as refused:
                handler.configure("b", None, '{"nope":1}')
            self.assertIn("unknown field `nope`", refused.exception.value)
        finally:
            del sys.modules["componentize_py_types"]
        handler.configure("b", None, "{}")
        self.assertEqual(
            handler.subscriptions(),
            [ht.Subscription(ht.EventKind.ROOM_PRE_CREATE, 10), ht.Subscription(ht.EventKind.IQ, -1)],
        )
        self.assertEqual(
            handler.handle(ht.Event_RoomPreCreate(ht.RoomCreation("x", "a@b/c"))),
            ht.Verdict_Reject(ht.Rejection("not-allowed", "a@b/c may not")),
        )
        self.assertEqual(handler.handle(ht.Event_RoomPreCreate(ht.RoomCreation("y", "a@b/c"))), ht.Verdict_Pass())
        self.assertEqual(
            handler.handle(ht.Event_Iq("<iq xmlns='jabber:client' type='get'/>")),
            ht.Verdict_Replace("<iq xmlns='jabber:client' type='get' seen='1'/>"),
        )
        self.assertEqual(handler.handle(ht.Event_Message("<message xmlns='jabber:client'/>")), ht.Verdict_Handled())
        self.assertEqual(handler.handle(ht.Event_Message("<message")), ht.Verdict_Pass())


if __name__ == "__main__":
    unittest.main()
