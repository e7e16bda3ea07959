//! brand-plugin in JavaScript: the plugin class (routing only; the logic is in policy.js). It
//! answers a brand query through the host and says `handled` (every other stanza passes),
//! checks the display name of each join (`occupant-pre-join`: refused or tidied) and greets
//! each joiner (`occupant-joined`). Imports no WIT interface itself, so the native tests load
//! it under Node with a MemoryHost; src/plugin.js is the component's entry and hands it the
//! real host.

import { Verdict } from '../lilt-sdk/lilt.js';
import * as policy from './policy.js';

/** The plugin, configured for one vhost. */
export class BrandPlugin {
  static configure({ settingsJson }) {
    return new BrandPlugin(policy.configure(settingsJson));
  }

  constructor(brand) {
    this.brand = brand;
  }

  subscriptions() {
    return [
      ['iq', 0],
      ['occupant-pre-join', 0],
      ['occupant-joined', 0],
    ];
  }

  handle(host, event) {
    switch (event.kind) {
      case 'iq': {
        const reply = policy.answer(this.brand, event.stanza);
        if (!reply) return Verdict.pass();
        try {
          host.send(reply);
          return Verdict.handled();
        } catch {
          return Verdict.pass();
        }
      }
      case 'occupant-pre-join':
        return policy.checkJoin(this.brand, event.presence);
      case 'occupant-joined': {
        const msg = policy.greeting(this.brand, event.room.jid, event.occupant.jid, event.occupant.nick);
        if (msg) {
          try {
            host.send(msg);
          } catch {
            // A refused send (it cannot be: the room is on the vhost's MUC) only loses the greeting.
          }
        }
        return Verdict.pass();
      }
      default:
        return Verdict.pass();
    }
  }
}
