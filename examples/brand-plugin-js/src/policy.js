//! The brand policy: settings, the answer to a brand query, the display-name rules applied to
//! a join and the welcome sent to each joiner. Pure (no host); tested natively by
//! test/policy.test.js. Exactly the behaviour of examples/brand-plugin/src/policy.rs (see its
//! module comment for the display-name rules); tests/all/brand_langs.rs compares the builds.

import { CLIENT, Element, NICK, Verdict, displayName, iqResult, parseSettings } from '../lilt-sdk/lilt.js';

/** The namespace of the brand query: `<query xmlns='urn:example:brand'/>`. */
export const NS = 'urn:example:brand';
/** The largest `max_name_length` accepted. */
export const MAX_NAME_LENGTH = 1000;

/** Settings defaults (`[vhosts.plugins.settings]`): unknown keys are refused. */
export const DEFAULTS = Object.freeze({
  welcome: 'Welcome!',
  colour: '#1d76ba',
  max_name_length: 32,
  forbidden_words: Object.freeze([]),
});

/** A control character or a Unicode space separator (Zs, Zl, Zp): the same set as the Rust one. */
const SPACES = /[\u0000-\u001f\u007f-\u009f \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/u;

/** `name` with runs of spaces and control characters made one space, and the ends trimmed. */
export function normalise(name) {
  return name
    .split(SPACES)
    .filter((w) => w !== '')
    .join(' ');
}

/**
 * Parse and check the settings; throws on bad JSON, an unknown key, a value of the wrong type,
 * a colour not `#rrggbb`, a `max_name_length` outside 1–1000 or a blank forbidden word.
 */
export function configure(json) {
  const brand = parseSettings(json, DEFAULTS);
  if (!/^#[0-9a-fA-F]{6}$/.test(brand.colour)) {
    throw new Error(`colour ${JSON.stringify(brand.colour)} is not #rrggbb`);
  }
  if (!Number.isInteger(brand.max_name_length)) {
    throw new Error('settings: `max_name_length` must be a whole number');
  }
  if (brand.max_name_length < 1 || brand.max_name_length > MAX_NAME_LENGTH) {
    throw new Error(`max_name_length: must be between 1 and ${MAX_NAME_LENGTH}`);
  }
  if (!brand.forbidden_words.every((w) => typeof w === 'string')) {
    throw new Error('settings: `forbidden_words` must be a list of strings');
  }
  if (brand.forbidden_words.some((w) => normalise(w) === '')) {
    throw new Error('forbidden_words: a word is blank');
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

/**
 * The display-name rules on a join presence (an Element): `Verdict.pass()`, a `not-acceptable`
 * refusal, or `Verdict.replace` with the tidied name.
 */
export function checkJoin(brand, presence) {
  const raw = displayName(presence);
  if (raw === undefined) return Verdict.pass();
  const name = normalise(raw);
  if (name === '') {
    return Verdict.reject('not-acceptable', 'Display names need at least one visible character.');
  }
  // Characters are code points, as in Rust and Python (not UTF-16 units).
  if ([...name].length > brand.max_name_length) {
    return Verdict.reject('not-acceptable', `Display names are at most ${brand.max_name_length} characters.`);
  }
  const lower = name.toLowerCase();
  const word = brand.forbidden_words.find((w) => lower.includes(normalise(w).toLowerCase()));
  if (word !== undefined) {
    return Verdict.reject('not-acceptable', `Display names may not contain "${normalise(word)}".`);
  }
  if (name === raw) return Verdict.pass();
  const tidied = Element.parse(presence.toXml());
  const nick = tidied.child('nick', NICK);
  nick.nodes = [name];
  return Verdict.replace(tidied);
}

/**
 * The welcome for someone who joined `room` (its bare JID) from `jid` (their real JID) as
 * `nick`: a groupchat message from the room to them alone, or undefined when `welcome` is
 * empty or the joiner is the focus (nick `focus`).
 */
export function greeting(brand, room, jid, nick) {
  if (brand.welcome === '' || nick === 'focus') return undefined;
  return new Element('message', CLIENT)
    .withAttr('from', room)
    .withAttr('to', jid)
    .withAttr('type', 'groupchat')
    .withChild(new Element('body', CLIENT).withText(brand.welcome));
}
