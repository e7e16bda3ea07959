"""brand-plugin in Python: the plugin class (routing only; the logic is in policy.py). It answers
a brand query through the host and says `handled` (every other stanza passes), checks the
display name of each join (`occupant-pre-join`: refused or tidied) and greets each joiner
(`occupant-joined`). Imports no WIT interface itself, so the native tests run it under CPython
with a MemoryHost; app.py is the component's entry and hands it the real host."""

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
        return [("iq", 0), ("occupant-pre-join", 0), ("occupant-joined", 0)]

    def handle(self, host, event):
        if event.kind == "iq":
            reply = policy.answer(self.brand, event.stanza)
            if reply is None:
                return Verdict.PASS
            try:
                host.send(reply)
            except RuntimeError:
                return Verdict.PASS
            return Verdict.HANDLED
        if event.kind == "occupant-pre-join":
            return policy.check_join(self.brand, event.presence)
        if event.kind == "occupant-joined":
            msg = policy.greeting(self.brand, event.room.jid, event.occupant.jid, event.occupant.nick)
            if msg is not None:
                try:
                    host.send(msg)
                except RuntimeError:
                    pass  # A refused send (it cannot be: the room is on the vhost's MUC) only loses the greeting.
        return Verdict.PASS
