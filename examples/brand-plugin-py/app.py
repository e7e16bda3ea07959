"""brand-plugin in Python, the component's entry: a tenant's welcome message, display-name rules
and brand colour, as examples/brand-plugin does in Rust. A client sends
`<iq type='get' to='VHOST'><query xmlns='urn:example:brand'/></iq>` and gets
`<query><welcome>…</welcome><colour>#rrggbb</colour></query>` back; every other stanza passes;
joins have their display name checked and joiners are greeted (policy.py). This module only
wires the WIT import to the plugin class (brand.py) and exports `HookHandler`. World:
wit/brand.wit (imports `stanzas` only). Settings: `welcome`, `colour`, `max_name_length`,
`forbidden_words`."""

from brand import BrandPlugin
from lilt_plugin import WasmHost, hook_handler
from wit_world import exports
from wit_world.imports import hook_types, stanzas

HookHandler = hook_handler(BrandPlugin, WasmHost(stanzas=stanzas), hook_types, exports.HookHandler)
