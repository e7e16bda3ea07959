//! brand-plugin in JavaScript: the plugin class (routing only; the logic is in policy.js). It
//! subscribes to `iq`, answers a brand query through the host and says `handled`; every other
//! stanza passes. Imports no WIT interface itself, so the native tests load it under Node with
//! a MemoryHost; src/plugin.js is the component's entry and hands it the real host.

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
    return [['iq', 0]];
  }

  handle(host, event) {
    if (event.kind !== 'iq') return Verdict.pass();
    const reply = policy.answer(this.brand, event.stanza);
    if (!reply) return Verdict.pass();
    try {
      host.send(reply);
      return Verdict.handled();
    } catch {
      return Verdict.pass();
    }
  }
}
