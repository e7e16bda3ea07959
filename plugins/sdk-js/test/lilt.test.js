//! Native tests of the JavaScript SDK (lilt.js) under plain Node: settings, XML round trips,
//! replies, the MemoryHost and the hook-handler export's event parsing and configure caching.
//! Run: node --test plugins/sdk-js/test/

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CLIENT, Element, MemoryHost, Verdict, errorReply, exportHooks, iqResult, parseSettings, wasmHost } from '../lilt.js';

test('settings: defaults, overrides, unknown keys and wrong types refused', () => {
  const defaults = { welcome: 'Welcome!', size: 3 };
  assert.deepEqual(parseSettings('null', defaults), defaults);
  assert.deepEqual(parseSettings('{}', defaults), defaults);
  assert.deepEqual(parseSettings('{"size":4}', defaults), { welcome: 'Welcome!', size: 4 });
  assert.throws(() => parseSettings('{"welcom":"x"}', defaults), /unknown field `welcom`/);
  assert.throws(() => parseSettings('{"size":"4"}', defaults), /`size` must be a number/);
  assert.throws(() => parseSettings('[1]', defaults), /expected an object/);
  assert.throws(() => parseSettings('{', defaults), /not JSON/);
});

test('xml: namespaces, prefixes, entities, and serialization as the Rust SDK writes it', () => {
  const e = Element.parse(
    `<?xml version='1.0'?><message xmlns='jabber:client' xmlns:j="urn:j" from='a@b/c'><!-- c --><body>1 &lt; 2 &amp;&#x21;</body><j:x a="&quot;q&quot;"/><![CDATA[<raw>]]></message>`,
  );
  assert.equal(e.name, 'message');
  assert.equal(e.ns, CLIENT);
  assert.equal(e.child('body', CLIENT).text(), '1 < 2 &!');
  assert.equal(e.child('x', 'urn:j').attr('a'), '"q"');
  assert.equal(e.text(), '<raw>');
  assert.equal(
    e.toXml(),
    `<message xmlns='jabber:client' from='a@b/c'><body>1 &lt; 2 &amp;!</body><x xmlns='urn:j' a='&quot;q&quot;'/>&lt;raw&gt;</message>`,
  );
  assert.deepEqual(Element.parse(e.toXml()).toXml(), e.toXml());
  for (const bad of ['', '<a>', '<a></b>', '<a/><b/>', '<p:a/>', "<a x='1' x='2'/>", '<a>&nope;</a>', 'text']) {
    assert.throws(() => Element.parse(bad), Error, bad);
  }
});

test('replies swap the addresses', () => {
  const iq = Element.parse(`<iq xmlns='jabber:client' type='get' id='7' from='a@b/c' to='b'><q xmlns='urn:q'/></iq>`);
  assert.equal(iqResult(iq).toXml(), `<iq xmlns='jabber:client' type='result' id='7' to='a@b/c' from='b'/>`);
  assert.equal(
    errorReply(iq, 'not-allowed').toXml(),
    `<iq xmlns='jabber:client' type='error' id='7' to='a@b/c' from='b'><error type='cancel'><not-allowed xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`,
  );
});

class Echo {
  static configured = 0;
  static configure({ settingsJson }) {
    Echo.configured += 1;
    return Object.assign(new Echo(), parseSettings(settingsJson, { prefix: '' }));
  }
  subscriptions() {
    return [['message', 5]];
  }
  handle(host, event) {
    if (event.kind !== 'message') return Verdict.pass();
    host.set('last', event.stanza.child('body', CLIENT).text());
    host.setTimer(1000, 'later');
    host.send(new Element('message', CLIENT).withAttr('to', event.stanza.attr('from')).withChild(new Element('body', CLIENT).withText(this.prefix + event.stanza.child('body', CLIENT).text())));
    return Verdict.handled();
  }
  onTimer(host, tag) {
    host.log('info', `timer ${tag}`);
  }
}

test('exportHooks: configure once per arguments, events parsed, bad XML passes, verdicts', () => {
  const host = new MemoryHost();
  const handler = exportHooks(Echo, host);
  handler.configure('b', undefined, '{"prefix":"> "}');
  handler.configure('b', undefined, '{"prefix":"> "}');
  assert.equal(Echo.configured, 1);
  assert.throws(() => handler.configure('b', undefined, '{"prefx":1}'), /unknown field `prefx`/);
  handler.configure('b', undefined, '{"prefix":"> "}');
  assert.deepEqual(handler.subscriptions(), [{ kind: 'message', priority: 5 }]);
  const verdict = handler.handle({ tag: 'message', val: `<message xmlns='jabber:client' from='a@b/c'><body>hi</body></message>` });
  assert.deepEqual(verdict, { tag: 'handled' });
  assert.deepEqual(host.takeSent(), [`<message xmlns='jabber:client' to='a@b/c'><body>&gt; hi</body></message>`]);
  assert.equal(new TextDecoder().decode(host.get('last')), 'hi');
  assert.deepEqual(host.timers, [[1000, 'later']]);
  assert.deepEqual(handler.handle({ tag: 'message', val: '<message><body>' }), { tag: 'pass' });
  assert.deepEqual(handler.handle({ tag: 'room-created', val: { jid: 'r@c' } }), { tag: 'pass' });
  handler.onTimer('later');
  assert.deepEqual(host.logs, ['INFO timer later']);
  assert.deepEqual(Verdict.reject('not-allowed', 'no'), { tag: 'reject', val: { condition: 'not-allowed', text: 'no' } });
});

test('wasmHost: calls the imports, turns result errors into Errors, absent imports throw', () => {
  const calls = [];
  const host = wasmHost({
    stanzas: {
      send(xml) {
        calls.push(xml);
        if (xml.includes('evil')) throw Object.assign(new Error('err'), { payload: 'from outside the plugin domains' });
      },
    },
    timers: { setTimer: (ms, tag) => calls.push([ms, tag]) },
  });
  host.send(new Element('message', CLIENT));
  host.setTimer(5, 't');
  assert.deepEqual(calls, [`<message xmlns='jabber:client'/>`, [5n, 't']]);
  assert.throws(() => host.send(`<message from='evil'/>`), /from outside the plugin domains/);
  assert.throws(() => host.get('k'), /does not import lilt:plugin\/kv/);
});
