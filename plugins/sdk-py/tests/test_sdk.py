"""Native tests of lilt_plugin under plain CPython: settings, XML round trips, replies, the
MemoryHost, the Hooks runner (configure caching, event parsing, bad XML passes) and WasmHost's
error mapping. Run: cd plugins/sdk-py && python3 -m unittest discover -s tests -t ."""

import unittest
from types import SimpleNamespace

from lilt_plugin import (
    CLIENT,
    Element,
    Hooks,
    MemoryHost,
    Verdict,
    WasmHost,
    error_reply,
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


if __name__ == "__main__":
    unittest.main()
