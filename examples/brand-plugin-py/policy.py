"""The brand policy: settings, the answer to a brand query, the display-name rules applied to a
join and the welcome sent to each joiner. Pure (no host); tested natively by tests/test_brand.py.
Exactly the behaviour of examples/brand-plugin/src/policy.rs (see its module comment for the
display-name rules); tests/all/brand_langs.rs compares the builds."""

import re
from typing import Optional

from lilt_plugin import CLIENT, NICK, Element, Verdict, display_name, iq_result, parse_settings

NS = "urn:example:brand"
"""The namespace of the brand query: `<query xmlns='urn:example:brand'/>`."""

MAX_NAME_LENGTH = 1000
"""The largest `max_name_length` accepted."""

DEFAULTS = {"welcome": "Welcome!", "colour": "#1d76ba", "max_name_length": 32, "forbidden_words": []}
"""Settings defaults (`[vhosts.plugins.settings]`): unknown keys are refused."""

_SPACES = re.compile("[\x00-\x1f\x7f-\x9f \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+")
"""A control character or a Unicode space separator (Zs, Zl, Zp): the same set as the Rust one."""


def normalise(name: str) -> str:
    """`name` with runs of spaces and control characters made one space, and the ends trimmed."""
    return " ".join(w for w in _SPACES.split(name) if w)


def configure(settings_json: str) -> dict:
    """Parse and check the settings; ValueError on bad JSON, an unknown key, a value of the
    wrong type, a colour that is not `#rrggbb`, a `max_name_length` outside 1–1000 or a blank
    forbidden word."""
    brand = parse_settings(settings_json, DEFAULTS)
    if not re.fullmatch(r"#[0-9a-fA-F]{6}", brand["colour"]):
        raise ValueError(f"colour {brand['colour']!r} is not #rrggbb")
    if not isinstance(brand["max_name_length"], int):
        raise ValueError("settings: `max_name_length` must be a whole number")
    if not 1 <= brand["max_name_length"] <= MAX_NAME_LENGTH:
        raise ValueError(f"max_name_length: must be between 1 and {MAX_NAME_LENGTH}")
    if not all(isinstance(w, str) for w in brand["forbidden_words"]):
        raise ValueError("settings: `forbidden_words` must be a list of strings")
    if any(normalise(w) == "" for w in brand["forbidden_words"]):
        raise ValueError("forbidden_words: a word is blank")
    return brand


def answer(brand: dict, iq: Element) -> Optional[Element]:
    """The answer to `<iq type='get'><query xmlns='urn:example:brand'/></iq>`, or None."""
    if iq.name != "iq" or iq.attr("type") != "get" or iq.child("query", NS) is None:
        return None
    query = (
        Element("query", NS)
        .with_child(Element("welcome", NS).with_text(brand["welcome"]))
        .with_child(Element("colour", NS).with_text(brand["colour"]))
    )
    return iq_result(iq, query)


def check_join(brand: dict, presence: Element) -> Verdict:
    """The display-name rules on a join presence: `Verdict.PASS`, a `not-acceptable` refusal,
    or `Verdict.replace` with the tidied name."""
    raw = display_name(presence)
    if raw is None:
        return Verdict.PASS
    name = normalise(raw)
    if name == "":
        return Verdict.reject("not-acceptable", "Display names need at least one visible character.")
    if len(name) > brand["max_name_length"]:
        return Verdict.reject(
            "not-acceptable", f"Display names are at most {brand['max_name_length']} characters."
        )
    lower = name.lower()
    for word in brand["forbidden_words"]:
        if normalise(word).lower() in lower:
            return Verdict.reject("not-acceptable", f'Display names may not contain "{normalise(word)}".')
    if name == raw:
        return Verdict.PASS
    tidied = Element.parse(presence.to_xml())
    tidied.child("nick", NICK).nodes = [name]
    return Verdict.replace(tidied)


def greeting(brand: dict, room: str, jid: str, nick: str) -> Optional[Element]:
    """The welcome for someone who joined `room` (its bare JID) from `jid` (their real JID) as
    `nick`: a groupchat message from the room to them alone, or None when `welcome` is empty or
    the joiner is the focus (nick `focus`)."""
    if brand["welcome"] == "" or nick == "focus":
        return None
    return (
        Element("message", CLIENT)
        .with_attr("from", room)
        .with_attr("to", jid)
        .with_attr("type", "groupchat")
        .with_child(Element("body", CLIENT).with_text(brand["welcome"]))
    )
