//! Native tests of brand-plugin-js under plain Node (`node --test test/`): the policy, and the
//! plugin class driven through the SDK's MemoryHost (the same cases as the Rust example's).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Element, MemoryHost, exportHooks } from '../lilt-sdk/lilt.js';
import { DEFAULTS, answer, configure } from '../src/policy.js';
import { BrandPlugin } from '../src/brand.js';

const query = () =>
  Element.parse(
    "<iq xmlns='jabber:client' type='get' id='b1' from='alice@meet.example/web' to='meet.example'><query xmlns='urn:example:brand'/></iq>",
  );

test('settings are checked', () => {
  assert.deepEqual(configure('null'), DEFAULTS);
  assert.equal(configure('{"welcome":"Hi from Acme","colour":"#ff6600"}').colour, '#ff6600');
  assert.throws(() => configure('{"colour":"orange"}'), /#rrggbb/);
  assert.throws(() => configure('{"color":"#ff6600"}'), /color/);
});

test('answers the brand query only', () => {
  const b = configure('{"welcome":"Hi from Acme","colour":"#ff6600"}');
  const reply = answer(b, query()).toXml();
  assert.equal(
    reply,
    "<iq xmlns='jabber:client' type='result' id='b1' to='alice@meet.example/web' from='meet.example'><query xmlns='urn:example:brand'><welcome>Hi from Acme</welcome><colour>#ff6600</colour></query></iq>",
  );
  assert.equal(answer(b, Element.parse("<iq xmlns='jabber:client' type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>")), undefined);
  const result = query();
  result.setAttr('type', 'result');
  assert.equal(answer(b, result), undefined);
});

test('the plugin answers through the host', () => {
  const host = new MemoryHost();
  const handler = exportHooks(BrandPlugin, host);
  handler.configure('b', undefined, '{"welcome":"Hi","colour":"#00ff00"}');
  assert.deepEqual(handler.subscriptions(), [{ kind: 'iq', priority: 0 }]);
  const iq = "<iq xmlns='jabber:client' type='get' id='1' from='a@b/c' to='b'><query xmlns='urn:example:brand'/></iq>";
  assert.deepEqual(handler.handle({ tag: 'iq', val: iq }), { tag: 'handled' });
  const sent = host.takeSent();
  assert.equal(sent.length, 1);
  assert.match(sent[0], /#00ff00/);
  host.refuseSend = 'refused';
  assert.deepEqual(handler.handle({ tag: 'iq', val: iq }), { tag: 'pass' });
});
