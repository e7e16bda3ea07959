//! Native tests of brand-plugin-js under plain Node (`node --test test/`): the policy, and the
//! plugin class driven through the SDK's MemoryHost (the same cases as the Rust example's).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Element, MemoryHost, NICK, Verdict, displayName, exportHooks } from '../lilt-sdk/lilt.js';
import { DEFAULTS, answer, checkJoin, configure, greeting, normalise } from '../src/policy.js';
import { BrandPlugin } from '../src/brand.js';

const query = () =>
  Element.parse(
    "<iq xmlns='jabber:client' type='get' id='b1' from='alice@meet.example/web' to='meet.example'><query xmlns='urn:example:brand'/></iq>",
  );

const acme = () =>
  configure('{"welcome":"Hi from Acme","colour":"#ff6600","max_name_length":10,"forbidden_words":["Admin"," root "]}');

/** A join presence with `name` as display name (XML-escaped by the caller). */
const join = (name) =>
  Element.parse(
    `<presence xmlns='jabber:client' to='r@conference.meet.example/a'><x xmlns='http://jabber.org/protocol/muc'/>${
      name === undefined ? '' : `<nick xmlns='${NICK}'>${name}</nick>`
    }<audiomuted>false</audiomuted></presence>`,
  );

const refusal = (v) => {
  assert.equal(v.tag, 'reject', JSON.stringify(v));
  return `${v.val.condition}: ${v.val.text ?? ''}`;
};

const tidiedName = (v) => {
  assert.equal(v.tag, 'replace', JSON.stringify(v));
  return Element.parse(v.val);
};

test('settings are checked', () => {
  assert.deepEqual(configure('null'), DEFAULTS);
  assert.deepEqual(configure('{}'), DEFAULTS);
  const b = acme();
  assert.equal(b.colour, '#ff6600');
  assert.equal(b.max_name_length, 10);
  for (const [bad, says] of [
    ['{"colour":"orange"}', '#rrggbb'],
    ['{"color":"#ff6600"}', 'color'],
    ['{"max_name_length":0}', 'max_name_length: must be between 1 and 1000'],
    ['{"max_name_length":1001}', 'max_name_length: must be between 1 and 1000'],
    ['{"max_name_length":-1}', ''],
    ['{"max_name_length":1.5}', ''],
    ['{"max_name_length":"9"}', ''],
    ['{"forbidden_words":["ok"," \\t"]}', 'forbidden_words: a word is blank'],
    ['{"forbidden_words":[1]}', ''],
    ['{"forbidden_words":"admin"}', ''],
    ['{"welcome":7}', ''],
  ]) {
    assert.throws(
      () => configure(bad),
      (e) => e.message.includes(says),
      bad,
    );
  }
  assert.equal(configure('{"max_name_length":1000}').max_name_length, 1000);
});

test('answers the brand query only', () => {
  const b = acme();
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

test('names are normalised', () => {
  assert.equal(normalise('  Ann \t\n Lee\u00a0\u3000'), 'Ann Lee');
  assert.equal(normalise('A\u0085B\u007fC\u0000D\u2028E'), 'A B C D E');
  assert.equal(normalise('\u0001\u009f \u200a'), '');
  assert.equal(normalise('Zoë 李'), 'Zoë 李');
  // Not spaces: a zero-width space and a soft hyphen are kept.
  assert.equal(normalise('a\u200bb\u00adc'), 'a\u200bb\u00adc');
});

test('display-name rules on join', () => {
  const b = acme();
  assert.deepEqual(checkJoin(b, join(undefined)), Verdict.pass(), 'no name: untouched');
  assert.deepEqual(checkJoin(b, join('Ann Lee')), Verdict.pass());
  // Exactly ten characters (code points, not bytes or UTF-16 units).
  assert.deepEqual(checkJoin(b, join('Zoë 李𝄞abcd')), Verdict.pass());
  const tidied = tidiedName(checkJoin(b, join('  Ann&#9;&#x85; Lee ')));
  assert.equal(displayName(tidied), 'Ann Lee');
  assert.ok(tidied.child('audiomuted', 'jabber:client') && tidied.attr('to'), tidied.toXml());
  assert.deepEqual(checkJoin(b, tidied), Verdict.pass(), 'tidy already');
  assert.equal(refusal(checkJoin(b, join(' &#x85; '))), 'not-acceptable: Display names need at least one visible character.');
  assert.equal(refusal(checkJoin(b, join('Bartholomew'))), 'not-acceptable: Display names are at most 10 characters.');
  // Counted after tidying: thirteen characters as sent, seven tidied.
  assert.equal(displayName(tidiedName(checkJoin(b, join('  Ann    Lee ')))), 'Ann Lee');
  assert.equal(refusal(checkJoin(b, join('the ADMIN'))), 'not-acceptable: Display names may not contain "Admin".');
  assert.equal(refusal(checkJoin(b, join('xrootx'))), 'not-acceptable: Display names may not contain "root".');
});

test('welcome goes to the joiner from the room', () => {
  const b = acme();
  assert.equal(
    greeting(b, 'r@conference.meet.example', 'ann@meet.example/web', 'a1').toXml(),
    "<message xmlns='jabber:client' from='r@conference.meet.example' to='ann@meet.example/web' type='groupchat'><body>Hi from Acme</body></message>",
  );
  assert.equal(greeting(b, 'r@c', 'focus@auth/x', 'focus'), undefined);
  assert.equal(greeting(configure('{"welcome":""}'), 'r@c', 'ann@m/w', 'a1'), undefined);
});

test('the plugin answers through the host', () => {
  const host = new MemoryHost();
  const handler = exportHooks(BrandPlugin, host);
  handler.configure('b', undefined, '{"welcome":"Hi","colour":"#00ff00"}');
  assert.deepEqual(handler.subscriptions(), [
    { kind: 'iq', priority: 0 },
    { kind: 'occupant-pre-join', priority: 0 },
    { kind: 'occupant-joined', priority: 0 },
  ]);
  const iq = "<iq xmlns='jabber:client' type='get' id='1' from='a@b/c' to='b'><query xmlns='urn:example:brand'/></iq>";
  assert.deepEqual(handler.handle({ tag: 'iq', val: iq }), { tag: 'handled' });
  const sent = host.takeSent();
  assert.equal(sent.length, 1);
  assert.match(sent[0], /#00ff00/);
  host.refuseSend = 'refused';
  assert.deepEqual(handler.handle({ tag: 'iq', val: iq }), { tag: 'pass' });
});

/** The WIT occupant event as componentize-js hands it over. */
const occupantEvent = (tag, nick, name) => ({
  tag,
  val: {
    room: { jid: 'r@conference.b', meetingId: '', createdMillis: 0n, occupants: 1 },
    occupant: { nick, jid: 'a@b/c', role: 'participant', affiliation: 'none' },
    presence: `<presence xmlns='jabber:client'><nick xmlns='${NICK}'>${name}</nick></presence>`,
  },
});

test('the plugin checks joins and greets joiners', () => {
  const host = new MemoryHost();
  const handler = exportHooks(BrandPlugin, host);
  handler.configure('b', undefined, '{"welcome":"Hi","max_name_length":5}');
  assert.equal(handler.handle(occupantEvent('occupant-pre-join', 'a1', 'Bartholomew')).tag, 'reject');
  const tidied = handler.handle(occupantEvent('occupant-pre-join', 'a1', ' Ann '));
  assert.equal(tidied.tag, 'replace');
  assert.match(tidied.val, />Ann</);
  assert.deepEqual(host.takeSent(), [], 'nothing sent before the join');
  assert.deepEqual(handler.handle(occupantEvent('occupant-joined', 'a1', 'Ann')), { tag: 'pass' });
  assert.deepEqual(host.takeSent(), [
    "<message xmlns='jabber:client' from='r@conference.b' to='a@b/c' type='groupchat'><body>Hi</body></message>",
  ]);
  handler.handle(occupantEvent('occupant-joined', 'focus', ''));
  assert.deepEqual(host.takeSent(), [], 'the focus is not greeted');
  host.refuseSend = 'refused';
  assert.deepEqual(handler.handle(occupantEvent('occupant-joined', 'a1', 'Ann')), { tag: 'pass' });
});
