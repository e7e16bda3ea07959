"""Native tests of brand-plugin-py under plain CPython: the policy, and the plugin class driven
through the SDK's Hooks runner and MemoryHost (the same cases as the Rust example's)."""

import unittest
from types import SimpleNamespace
from typing import Optional

import policy
from brand import BrandPlugin
from lilt_plugin import CLIENT, NICK, Element, Hooks, MemoryHost, Verdict, display_name


def query():
    return Element.parse(
        "<iq xmlns='jabber:client' type='get' id='b1' from='alice@meet.example/web' "
        "to='meet.example'><query xmlns='urn:example:brand'/></iq>"
    )


def acme():
    return policy.configure(
        '{"welcome":"Hi from Acme","colour":"#ff6600","max_name_length":10,"forbidden_words":["Admin"," root "]}'
    )


def join(name: Optional[str]) -> Element:
    """A join presence with `name` as display name (XML-escaped by the caller)."""
    nick = "" if name is None else f"<nick xmlns='{NICK}'>{name}</nick>"
    return Element.parse(
        "<presence xmlns='jabber:client' to='r@conference.meet.example/a'>"
        f"<x xmlns='http://jabber.org/protocol/muc'/>{nick}<audiomuted>false</audiomuted></presence>"
    )


class Policy(unittest.TestCase):
    def refusal(self, v: Verdict) -> str:
        self.assertEqual(v.tag, "reject", v)
        return f"{v.condition}: {v.text or ''}"

    def tidied(self, v: Verdict) -> Element:
        self.assertEqual(v.tag, "replace", v)
        return Element.parse(v.stanza)

    def test_settings_are_checked(self):
        self.assertEqual(policy.configure("null"), policy.DEFAULTS)
        self.assertEqual(policy.configure("{}"), policy.DEFAULTS)
        b = acme()
        self.assertEqual(b["colour"], "#ff6600")
        self.assertEqual(b["max_name_length"], 10)
        for bad, says in [
            ('{"colour":"orange"}', "#rrggbb"),
            ('{"color":"#ff6600"}', "color"),
            ('{"max_name_length":0}', "max_name_length: must be between 1 and 1000"),
            ('{"max_name_length":1001}', "max_name_length: must be between 1 and 1000"),
            ('{"max_name_length":-1}', ""),
            ('{"max_name_length":1.5}', ""),
            ('{"max_name_length":"9"}', ""),
            ('{"max_name_length":true}', ""),
            ('{"forbidden_words":["ok"," \\t"]}', "forbidden_words: a word is blank"),
            ('{"forbidden_words":[1]}', ""),
            ('{"forbidden_words":"admin"}', ""),
            ('{"welcome":7}', ""),
        ]:
            with self.subTest(bad=bad), self.assertRaises(ValueError) as e:
                policy.configure(bad)
            self.assertIn(says, str(e.exception))
        self.assertEqual(policy.configure('{"max_name_length":1000}')["max_name_length"], 1000)

    def test_answers_the_brand_query_only(self):
        b = acme()
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

    def test_names_are_normalised(self):
        self.assertEqual(policy.normalise("  Ann \t\n Lee\u00a0\u3000"), "Ann Lee")
        self.assertEqual(policy.normalise("A\u0085B\u007fC\u0000D\u2028E"), "A B C D E")
        self.assertEqual(policy.normalise("\u0001\u009f \u200a"), "")
        self.assertEqual(policy.normalise("Zoë 李"), "Zoë 李")
        # Not spaces: a zero-width space and a soft hyphen are kept.
        self.assertEqual(policy.normalise("a\u200bb\u00adc"), "a\u200bb\u00adc")

    def test_display_name_rules_on_join(self):
        b = acme()
        self.assertEqual(policy.check_join(b, join(None)), Verdict.PASS, "no name: untouched")
        self.assertEqual(policy.check_join(b, join("Ann Lee")), Verdict.PASS)
        # Exactly ten characters (code points, not bytes or UTF-16 units).
        self.assertEqual(policy.check_join(b, join("Zoë 李𝄞abcd")), Verdict.PASS)
        tidied = self.tidied(policy.check_join(b, join("  Ann&#9;&#x85; Lee ")))
        self.assertEqual(display_name(tidied), "Ann Lee")
        self.assertIsNotNone(tidied.child("audiomuted", CLIENT), tidied.to_xml())
        self.assertIsNotNone(tidied.attr("to"), tidied.to_xml())
        self.assertEqual(policy.check_join(b, tidied), Verdict.PASS, "tidy already")
        self.assertEqual(
            self.refusal(policy.check_join(b, join(" &#x85; "))),
            "not-acceptable: Display names need at least one visible character.",
        )
        self.assertEqual(
            self.refusal(policy.check_join(b, join("Bartholomew"))),
            "not-acceptable: Display names are at most 10 characters.",
        )
        # Counted after tidying: thirteen characters as sent, seven tidied.
        self.assertEqual(display_name(self.tidied(policy.check_join(b, join("  Ann    Lee ")))), "Ann Lee")
        self.assertEqual(
            self.refusal(policy.check_join(b, join("the ADMIN"))),
            'not-acceptable: Display names may not contain "Admin".',
        )
        self.assertEqual(
            self.refusal(policy.check_join(b, join("xrootx"))),
            'not-acceptable: Display names may not contain "root".',
        )

    def test_welcome_goes_to_the_joiner_from_the_room(self):
        b = acme()
        self.assertEqual(
            policy.greeting(b, "r@conference.meet.example", "ann@meet.example/web", "a1").to_xml(),
            "<message xmlns='jabber:client' from='r@conference.meet.example' to='ann@meet.example/web' "
            "type='groupchat'><body>Hi from Acme</body></message>",
        )
        self.assertIsNone(policy.greeting(b, "r@c", "focus@auth/x", "focus"))
        self.assertIsNone(policy.greeting(policy.configure('{"welcome":""}'), "r@c", "ann@m/w", "a1"))


def occupant_event(nick: str, name: str):
    """The WIT occupant event as componentize-py hands it over (records as attributes)."""
    return SimpleNamespace(
        room=SimpleNamespace(jid="r@conference.b", meeting_id="", created_millis=0, occupants=1),
        occupant=SimpleNamespace(nick=nick, jid="a@b/c", role="participant", affiliation="none"),
        presence=f"<presence xmlns='jabber:client'><nick xmlns='{NICK}'>{name}</nick></presence>",
    )


class Plugin(unittest.TestCase):
    def test_the_plugin_answers_through_the_host(self):
        host = MemoryHost()
        hooks = Hooks(BrandPlugin, host)
        hooks.configure("b", None, '{"welcome":"Hi","colour":"#00ff00"}')
        self.assertEqual(hooks.subscriptions(), [("iq", 0), ("occupant-pre-join", 0), ("occupant-joined", 0)])
        iq = "<iq xmlns='jabber:client' type='get' id='1' from='a@b/c' to='b'><query xmlns='urn:example:brand'/></iq>"
        self.assertEqual(hooks.handle("iq", iq), Verdict.HANDLED)
        sent = host.take_sent()
        self.assertEqual(len(sent), 1)
        self.assertIn("#00ff00", sent[0])
        host.refuse_send = "refused"
        self.assertEqual(hooks.handle("iq", iq), Verdict.PASS)

    def test_the_plugin_checks_joins_and_greets_joiners(self):
        host = MemoryHost()
        hooks = Hooks(BrandPlugin, host)
        hooks.configure("b", None, '{"welcome":"Hi","max_name_length":5}')
        self.assertEqual(hooks.handle("occupant-pre-join", occupant_event("a1", "Bartholomew")).tag, "reject")
        tidied = hooks.handle("occupant-pre-join", occupant_event("a1", " Ann "))
        self.assertEqual(tidied.tag, "replace")
        self.assertIn(">Ann<", tidied.stanza)
        self.assertEqual(host.take_sent(), [], "nothing sent before the join")
        self.assertEqual(hooks.handle("occupant-joined", occupant_event("a1", "Ann")), Verdict.PASS)
        self.assertEqual(
            host.take_sent(),
            ["<message xmlns='jabber:client' from='r@conference.b' to='a@b/c' type='groupchat'><body>Hi</body></message>"],
        )
        hooks.handle("occupant-joined", occupant_event("focus", ""))
        self.assertEqual(host.take_sent(), [], "the focus is not greeted")
        host.refuse_send = "refused"
        self.assertEqual(hooks.handle("occupant-joined", occupant_event("a1", "Ann")), Verdict.PASS)


if __name__ == "__main__":
    unittest.main()
