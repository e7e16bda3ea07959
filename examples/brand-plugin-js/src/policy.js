//! The brand policy: settings, and the answer to a brand query. Pure (no host); tested
//! natively by test/policy.test.js. The same behaviour as examples/brand-plugin/src/policy.rs.

import { Element, iqResult, parseSettings } from '../lilt-sdk/lilt.js';

/** The namespace of the brand query: `<query xmlns='urn:example:brand'/>`. */
export const NS = 'urn:example:brand';

/** Settings defaults (`[vhosts.plugins.settings]`): unknown keys are refused. */
export const DEFAULTS = Object.freeze({ welcome: 'Welcome!', colour: '#1d76ba' });

/** Parse and check the settings; throws on bad JSON, an unknown key or a colour not `#rrggbb`. */
export function configure(json) {
  const brand = parseSettings(json, DEFAULTS);
  if (!/^#[0-9a-fA-F]{6}$/.test(brand.colour)) {
    throw new Error(`colour ${JSON.stringify(brand.colour)} is not #rrggbb`);
  }
  return brand;
}

/** The answer to `<iq type='get'><query xmlns='urn:example:brand'/></iq>`, or undefined. */
export function answer(brand, iq) {
  if (iq.name !== 'iq' || iq.attr('type') !== 'get') return undefined;
  if (!iq.child('query', NS)) return undefined;
  const query = new Element('query', NS)
    .withChild(new Element('welcome', NS).withText(brand.welcome))
    .withChild(new Element('colour', NS).withText(brand.colour));
  return iqResult(iq, query);
}
