//! lilt-plugin-sdk for JavaScript: what a Lilt plugin written in JavaScript needs besides its
//! logic, mirroring the Rust SDK (plugins/sdk): strict settings (`parseSettings`), a small XML
//! `Element` (parse and serialize stanzas, `iqResult`, `errorReply`), the `Host` the plugin
//! talks to (`wasmHost` over the WIT imports inside the server, `MemoryHost` in native tests)
//! and `exportHooks`, which turns a plugin class into the `hook-handler` export that
//! componentize-js expects.
//!
//! Plain ES module, no dependencies, no WIT imports of its own: the plugin's entry file imports
//! the `lilt:plugin/*` interfaces its world names and hands them to `wasmHost`, so a component
//! imports only what it uses and loads with the smallest grants. Tests: test/lilt.test.js
//! (`node --test plugins/sdk-js/test/`).

/** `jabber:client`, the namespace of stanzas. */
export const CLIENT = 'jabber:client';
/** Stanza error conditions. */
export const STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';
/** Jitsi's display name element. */
export const NICK = 'http://jabber.org/protocol/nick';

// ---------------------------------------------------------------------------------------------
// Settings

/**
 * Parse settings JSON against `defaults`: `null` and `{}` give the defaults; an unknown key,
 * or a value whose type differs from its default's, is refused with a message naming the key.
 * @param {string} json
 * @param {Record<string, unknown>} defaults
 * @returns {Record<string, unknown>}
 */
export function parseSettings(json, defaults) {
  let value;
  try {
    value = JSON.parse(json);
  } catch (e) {
    throw new Error(`settings are not JSON: ${e.message}`);
  }
  const out = { ...defaults };
  if (value === null) return out;
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new Error('settings: expected an object');
  }
  const known = Object.keys(defaults);
  for (const [key, v] of Object.entries(value)) {
    if (!Object.hasOwn(defaults, key)) {
      throw new Error(
        `settings: unknown field \`${key}\`, expected ${known.length ? known.map((k) => `\`${k}\``).join(', ') : 'none'}`,
      );
    }
    const want = Array.isArray(defaults[key]) ? 'array' : typeof defaults[key];
    const got = v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v;
    if (want !== got) {
      throw new Error(`settings: \`${key}\` must be a ${want}, not a ${got}`);
    }
    out[key] = v;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// XML

/** Escape text or an attribute value (either quote style). */
export function escape(s) {
  return String(s).replace(/[&<>'"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', "'": '&apos;', '"': '&quot;' })[c]);
}

const ENTITIES = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function unescape(s) {
  return s.replace(/&([^;&]*);/g, (_, ref) => {
    if (ref.startsWith('#x')) return String.fromCodePoint(parseInt(ref.slice(2), 16));
    if (ref.startsWith('#')) return String.fromCodePoint(parseInt(ref.slice(1), 10));
    if (ref in ENTITIES) return ENTITIES[ref];
    throw new Error(`unknown entity &${ref};`);
  });
}

/** An XML element with its namespace resolved, ordered attributes and child nodes. */
export class Element {
  /** @param {string} name @param {string} ns */
  constructor(name, ns) {
    this.name = name;
    this.ns = ns;
    /** @type {[string, string][]} */
    this.attrs = [];
    /** @type {(Element|string)[]} */
    this.nodes = [];
  }

  /** Builder: set an attribute. */
  withAttr(name, value) {
    this.setAttr(name, value);
    return this;
  }

  /** Builder: append a child element. */
  withChild(child) {
    this.nodes.push(child);
    return this;
  }

  /** Builder: append text. */
  withText(text) {
    this.nodes.push(String(text));
    return this;
  }

  /** Set (or replace) an attribute. */
  setAttr(name, value) {
    const a = this.attrs.find(([k]) => k === name);
    if (a) a[1] = String(value);
    else this.attrs.push([name, String(value)]);
  }

  /** An attribute's value, or undefined. */
  attr(name) {
    return this.attrs.find(([k]) => k === name)?.[1];
  }

  /** Child elements. */
  children() {
    return this.nodes.filter((n) => n instanceof Element);
  }

  /** The first child with this name and namespace, or undefined. */
  child(name, ns) {
    return this.children().find((c) => c.name === name && c.ns === ns);
  }

  /** Concatenated direct text. */
  text() {
    return this.nodes.filter((n) => typeof n === 'string').join('');
  }

  /** Serialize, declaring every namespace needed (as the Rust SDK does). */
  toXml(parentNs) {
    let out = `<${this.name}`;
    if (parentNs !== this.ns) out += ` xmlns='${escape(this.ns)}'`;
    for (const [k, v] of this.attrs) out += ` ${k}='${escape(v)}'`;
    if (this.nodes.length === 0) return `${out}/>`;
    out += '>';
    for (const n of this.nodes) out += n instanceof Element ? n.toXml(this.ns) : escape(n);
    return `${out}</${this.name}>`;
  }

  /**
   * Parse one element. Throws when the text is not one well-formed element or uses an
   * undeclared prefix. Comments, processing instructions and an XML declaration are skipped.
   * @param {string} xml
   * @returns {Element}
   */
  static parse(xml) {
    const scopes = []; // per open element: [prefix, uri][]
    const stack = [];
    const resolve = (prefix) => {
      if (prefix === 'xml') return 'http://www.w3.org/XML/1998/namespace';
      for (let i = scopes.length - 1; i >= 0; i--) {
        for (let j = scopes[i].length - 1; j >= 0; j--) {
          if (scopes[i][j][0] === prefix) return scopes[i][j][1];
        }
      }
      if (prefix === '') return '';
      throw new Error(`undeclared prefix ${JSON.stringify(prefix)}`);
    };
    let i = 0;
    let done = null;
    const tag = /^<([A-Za-z_][\w.:-]*)((?:\s+[A-Za-z_][\w.:-]*\s*=\s*(?:'[^'<]*'|"[^"<]*"))*)\s*(\/?)>/;
    const attr = /([A-Za-z_][\w.:-]*)\s*=\s*(?:'([^'<]*)'|"([^"<]*)")/g;
    while (i < xml.length) {
      if (done !== null) {
        const rest = xml.slice(i).replace(/<!--[\s\S]*?-->|<\?[\s\S]*?\?>/g, '');
        if (rest.trim() !== '') throw new Error('content after the element');
        break;
      }
      const lt = xml.indexOf('<', i);
      if (lt !== i) {
        const text = xml.slice(i, lt === -1 ? xml.length : lt);
        if (stack.length) push(stack, unescape(text));
        else if (text.trim() !== '') throw new Error('text outside the element');
        i = lt === -1 ? xml.length : lt;
        continue;
      }
      const rest = xml.slice(i);
      if (rest.startsWith('<!--')) {
        const end = xml.indexOf('-->', i);
        if (end < 0) throw new Error('unterminated comment');
        i = end + 3;
      } else if (rest.startsWith('<?')) {
        const end = xml.indexOf('?>', i);
        if (end < 0) throw new Error('unterminated processing instruction');
        i = end + 2;
      } else if (rest.startsWith('<![CDATA[')) {
        const end = xml.indexOf(']]>', i);
        if (end < 0 || !stack.length) throw new Error('bad CDATA section');
        push(stack, xml.slice(i + 9, end));
        i = end + 3;
      } else if (rest.startsWith('</')) {
        const m = /^<\/([A-Za-z_][\w.:-]*)\s*>/.exec(rest);
        if (!m) throw new Error('bad end tag');
        const el = stack.pop();
        const qname = m[1];
        if (!el || qname !== el.qname) throw new Error(`unbalanced end tag </${qname}>`);
        scopes.pop();
        delete el.qname;
        if (stack.length) stack[stack.length - 1].nodes.push(el);
        else done = el;
        i += m[0].length;
      } else {
        const m = tag.exec(rest);
        if (!m) throw new Error(`bad start tag at ${i}`);
        const decls = [];
        const attrs = [];
        for (const a of m[2].matchAll(attr)) {
          const [key, value] = [a[1], unescape(a[2] ?? a[3])];
          if (key === 'xmlns') decls.push(['', value]);
          else if (key.startsWith('xmlns:')) decls.push([key.slice(6), value]);
          else if (attrs.some(([k]) => k === key)) throw new Error(`duplicate attribute ${key}`);
          else attrs.push([key, value]);
        }
        scopes.push(decls);
        const qname = m[1];
        const colon = qname.indexOf(':');
        const [prefix, local] = colon < 0 ? ['', qname] : [qname.slice(0, colon), qname.slice(colon + 1)];
        const el = new Element(local, resolve(prefix));
        el.attrs = attrs;
        i += m[0].length;
        if (m[3] === '/') {
          scopes.pop();
          if (stack.length) stack[stack.length - 1].nodes.push(el);
          else done = el;
        } else {
          el.qname = qname;
          stack.push(el);
        }
      }
    }
    if (done === null) throw new Error('no complete element');
    return done;
  }
}

function push(stack, text) {
  const top = stack[stack.length - 1];
  const last = top.nodes.length - 1;
  if (last >= 0 && typeof top.nodes[last] === 'string') top.nodes[last] += text;
  else top.nodes.push(text);
}

function copySwapped(from, to) {
  if (from.attr('id') !== undefined) to.setAttr('id', from.attr('id'));
  if (from.attr('from') !== undefined) to.setAttr('to', from.attr('from'));
  if (from.attr('to') !== undefined) to.setAttr('from', from.attr('to'));
}

/** A reply to an iq: `result` with `payload` (optional), addresses swapped. */
export function iqResult(iq, payload) {
  const r = new Element('iq', CLIENT).withAttr('type', 'result');
  copySwapped(iq, r);
  if (payload) r.withChild(payload);
  return r;
}

/** An error reply with `condition` (type `cancel`). */
export function errorReply(stanza, condition) {
  const r = new Element(stanza.name, CLIENT).withAttr('type', 'error');
  copySwapped(stanza, r);
  return r.withChild(new Element('error', CLIENT).withAttr('type', 'cancel').withChild(new Element(condition, STANZAS)));
}

/** The display name a Jitsi client puts in its presence (`<nick xmlns=…nick>`), or undefined. */
export function displayName(presence) {
  return presence.child('nick', NICK)?.text();
}

// ---------------------------------------------------------------------------------------------
// Hosts

/** Verdicts a hook answers (the WIT `verdict` variant). */
export const Verdict = {
  pass: () => ({ tag: 'pass' }),
  handled: () => ({ tag: 'handled' }),
  /** Refuse with a stanza error condition and optional text. */
  reject: (condition, text) => ({ tag: 'reject', val: { condition, text } }),
  /** Carry on with this stanza (an Element or XML) instead. */
  replace: (stanza) => ({ tag: 'replace', val: stanza instanceof Element ? stanza.toXml() : stanza }),
};

function errText(e) {
  // componentize-js throws a result's `err` as an error whose `payload` is the WIT value.
  const p = e && typeof e === 'object' && 'payload' in e ? e.payload : e;
  if (typeof p === 'string') return p;
  if (p && typeof p === 'object' && 'tag' in p) return p.val === undefined ? p.tag : `${p.tag}: ${p.val}`;
  return String(p?.message ?? p);
}

function missing(iface) {
  return () => {
    throw new Error(`this plugin's world does not import lilt:plugin/${iface}`);
  };
}

/**
 * The host inside the server, over the WIT imports the plugin's entry file passes in:
 * `wasmHost({ host, kv, clock, stanzas, timers })`, each the module namespace of
 * `lilt:plugin/NAME@0.1.0` (any may be left out; calling into one left out throws).
 * Every method has the same shape as `MemoryHost`'s.
 */
export function wasmHost(imports) {
  const { host, kv, clock, stanzas, timers } = imports;
  return {
    get: kv ? (key) => kv.get(key) ?? undefined : missing('kv'),
    set: kv
      ? (key, value) => {
          try {
            kv.set(key, typeof value === 'string' ? new TextEncoder().encode(value) : value);
          } catch (e) {
            throw new Error(errText(e));
          }
        }
      : missing('kv'),
    delete: kv ? (key) => void kv.delete(key) : missing('kv'),
    keys: kv ? (prefix) => kv.listKeys(prefix) : missing('kv'),
    nowMs: clock ? () => Number(clock.nowUnixMillis()) : missing('clock'),
    send: stanzas
      ? (stanza) => {
          try {
            stanzas.send(stanza instanceof Element ? stanza.toXml() : stanza);
          } catch (e) {
            throw new Error(errText(e));
          }
        }
      : missing('stanzas'),
    setTimer: timers
      ? (delayMs, tag) => {
          try {
            timers.setTimer(BigInt(delayMs), tag);
          } catch (e) {
            throw new Error(errText(e));
          }
        }
      : missing('timers'),
    log: host ? (level, message) => host.log(level, message) : () => {},
  };
}

/** A host in memory, for native tests: records what was sent, the timers and the log. */
export class MemoryHost {
  constructor() {
    /** @type {Map<string, Uint8Array>} */
    this.kv = new Map();
    /** The clock `nowMs` returns. */
    this.now = 0;
    /** Every stanza sent, as XML. */
    this.sent = [];
    /** Every timer set: [delayMs, tag]. */
    this.timers = [];
    /** Every log line, as `LEVEL message`. */
    this.logs = [];
    /** When set, `send` throws this text (as the server does for a `from` outside the plugin's domains). */
    this.refuseSend = undefined;
  }

  get(key) {
    return this.kv.get(key);
  }

  set(key, value) {
    this.kv.set(key, typeof value === 'string' ? new TextEncoder().encode(value) : Uint8Array.from(value));
  }

  delete(key) {
    this.kv.delete(key);
  }

  keys(prefix) {
    return [...this.kv.keys()].filter((k) => k.startsWith(prefix)).sort();
  }

  nowMs() {
    return this.now;
  }

  send(stanza) {
    if (this.refuseSend !== undefined) throw new Error(this.refuseSend);
    this.sent.push(stanza instanceof Element ? stanza.toXml() : stanza);
  }

  setTimer(delayMs, tag) {
    this.timers.push([Number(delayMs), tag]);
  }

  log(level, message) {
    this.logs.push(`${level.toUpperCase()} ${message}`);
  }

  /** Stanzas sent so far, taken. */
  takeSent() {
    return this.sent.splice(0);
  }
}

// ---------------------------------------------------------------------------------------------
// Events and the hook-handler export

const STANZA_EVENTS = new Set(['message', 'presence', 'iq']);
const OCCUPANT_EVENTS = new Set(['occupant-pre-join', 'occupant-joined', 'occupant-left']);

/**
 * The WIT event as the plugin sees it: `{ kind, stanza }` for stanza events (an Element),
 * `{ kind, room, occupant, presence }` (presence an Element) for occupant events,
 * `{ kind, room, creator }` for room-pre-create, `{ kind, room }` otherwise; undefined when
 * the XML does not parse (the plugin is then not called and the answer is `pass`).
 */
export function parseEvent(event) {
  const kind = event.tag;
  try {
    if (STANZA_EVENTS.has(kind)) return { kind, stanza: Element.parse(event.val) };
    if (OCCUPANT_EVENTS.has(kind)) {
      const { room, occupant, presence } = event.val;
      return { kind, room, occupant, presence: Element.parse(presence) };
    }
    if (kind === 'room-pre-create') return { kind, room: event.val.room, creator: event.val.creator };
    return { kind, room: event.val };
  } catch {
    return undefined;
  }
}

/**
 * The `hook-handler` export for `Plugin`, a class with `static configure({ vhost, component,
 * settingsJson })` returning an instance, and optional `subscriptions()` (a list of
 * `[kind, priority]`), `handle(host, event)` returning a verdict, and `onTimer(host, tag)`.
 * `configure` runs again only when its arguments change; a throw refuses the configuration.
 * In the entry file: `export const hookHandler = exportHooks(MyPlugin, wasmHost({...}))`.
 */
export function exportHooks(Plugin, host) {
  let key;
  let plugin;
  const get = () => {
    if (!plugin) throw new Error('not configured');
    return plugin;
  };
  return {
    configure(vhost, component, settingsJson) {
      const k = JSON.stringify([vhost, component ?? null, settingsJson]);
      if (k === key && plugin) return;
      try {
        plugin = Plugin.configure({ vhost, component: component ?? undefined, settingsJson });
      } catch (e) {
        plugin = undefined;
        key = undefined;
        throw errText(e);
      }
      key = k;
    },
    subscriptions() {
      const p = get();
      return (p.subscriptions ? p.subscriptions() : []).map(([kind, priority]) => ({ kind, priority }));
    },
    handle(event) {
      const p = get();
      const e = parseEvent(event);
      if (!e || !p.handle) return Verdict.pass();
      return p.handle(host, e) ?? Verdict.pass();
    },
    onTimer(tag) {
      const p = get();
      if (p.onTimer) p.onTimer(host, tag);
    },
  };
}
