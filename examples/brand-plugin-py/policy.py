"""The brand policy: settings, and the answer to a brand query. Pure (no host); tested natively
by tests/test_brand.py. The same behaviour as examples/brand-plugin/src/policy.rs."""

import re
from typing import Optional

from lilt_plugin import Element, iq_result, parse_settings

NS = "urn:example:brand"
"""The namespace of the brand query: `<query xmlns='urn:example:brand'/>`."""

DEFAULTS = {"welcome": "Welcome!", "colour": "#1d76ba"}
"""Settings defaults (`[vhosts.plugins.settings]`): unknown keys are refused."""


def configure(settings_json: str) -> dict:
    """Parse and check the settings; ValueError on bad JSON, an unknown key or a colour that is
    not `#rrggbb`."""
    brand = parse_settings(settings_json, DEFAULTS)
    if not re.fullmatch(r"#[0-9a-fA-F]{6}", brand["colour"]):
        raise ValueError(f"colour {brand['colour']!r} is not #rrggbb")
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
