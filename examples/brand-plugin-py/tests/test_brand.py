"""Native tests of brand-plugin-py under plain CPython: the policy, and the plugin class driven
through the SDK's Hooks runner and MemoryHost (the same cases as the Rust example's)."""

import unittest

import policy
from brand import BrandPlugin
from lilt_plugin import Element, Hooks, MemoryHost, Verdict


def query():
    return Element.parse(
        "<iq xmlns='jabber:client' type='get' id='b1' from='alice@meet.example/web' "
        "to='meet.example'><query xmlns='urn:example:brand'/></iq>"
    )


class Policy(unittest.TestCase):
    def test_settings_are_checked(self):
        self.assertEqual(policy.configure("null"), policy.DEFAULTS)
        self.assertEqual(policy.configure('{"welcome":"Hi from Acme","colour":"#ff6600"}')["colour"], "#ff6600")
        with self.assertRaisesRegex(ValueError, "#rrggbb"):
            policy.configure('{"colour":"orange"}')
        with self.assertRaisesRegex(ValueError, "color"):
            policy.configure('{"color":"#ff6600"}')

    def test_answers_the_brand_query_only(self):
        b = policy.configure('{"welcome":"Hi from Acme","colour":"#ff6600"}')
        self.assertEqual(
            policy.answer(b, query()).to_xml(),
            "<iq xmlns='jabber:client' type='result' id='b1' to='alice@meet.example/web' from='meet.example'>"
            "<query xmlns='urn:example:brand'><welcome>Hi from Acme</welcome><colour>#ff6600</colour></query></iq>",
        )
        ping = Element.parse("<iq xmlns='jabber:client' type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>")
        self.assertIsNone(policy.answer(b, ping))
        result = query()
        result.set_attr("type", "result")
        self.assertIsNone(policy.answer(b, result))


class Plugin(unittest.TestCase):
    def test_the_plugin_answers_through_the_host(self):
        host = MemoryHost()
        hooks = Hooks(BrandPlugin, host)
        hooks.configure("b", None, '{"welcome":"Hi","colour":"#00ff00"}')
        self.assertEqual(hooks.subscriptions(), [("iq", 0)])
        iq = "<iq xmlns='jabber:client' type='get' id='1' from='a@b/c' to='b'><query xmlns='urn:example:brand'/></iq>"
        self.assertEqual(hooks.handle("iq", iq), Verdict.HANDLED)
        sent = host.take_sent()
        self.assertEqual(len(sent), 1)
        self.assertIn("#00ff00", sent[0])
        host.refuse_send = "refused"
        self.assertEqual(hooks.handle("iq", iq), Verdict.PASS)


if __name__ == "__main__":
    unittest.main()
