"""brand-plugin in Python: the plugin class (routing only; the logic is in policy.py). It
subscribes to `iq`, answers a brand query through the host and says `handled`; every other
stanza passes. Imports no WIT interface itself, so the native tests run it under CPython with a
MemoryHost; app.py is the component's entry and hands it the real host."""

import policy
from lilt_plugin import Verdict


class BrandPlugin:
    """The plugin, configured for one vhost."""

    def __init__(self, brand: dict) -> None:
        self.brand = brand

    @classmethod
    def configure(cls, vhost, component, settings_json):
        return cls(policy.configure(settings_json))

    def subscriptions(self):
        return [("iq", 0)]

    def handle(self, host, event):
        if event.kind != "iq":
            return Verdict.PASS
        reply = policy.answer(self.brand, event.stanza)
        if reply is None:
            return Verdict.PASS
        try:
            host.send(reply)
        except RuntimeError:
            return Verdict.PASS
        return Verdict.HANDLED
