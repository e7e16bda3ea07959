// A browser-side XMPP library driven under Node for tests/all: xmpp.js (@xmpp/client) over
// WebSocket, or Strophe.js (the library lib-jitsi-meet builds on) over WebSocket or BOSH.
//
// Usage: node client.mjs <xmppjs|strophe> <service-url> <domain> <peer-jid>
// It logs in anonymously, pings the domain, sends "hello from <lib>" to the peer, waits for
// "hello back", disconnects cleanly and exits 0. Progress goes to stdout as JSON lines
// ({"online":jid}, {"ping":"ok"}, {"received":body}, {"closed":true}); any failure or the
// 30 s deadline exits 1 with {"error":…}. Nothing here was written for Lilt: only the glue.

import { DOMParser } from "@xmldom/xmldom";
import WebSocket from "ws";
import XMLHttpRequest from "xhr2";

// Browsers give XMLHttpRequest a parsed responseXML; xhr2 only has responseText (Strophe 5's
// fallback parses it but then returns nothing), so parse it here as a browser would.
class BrowserXHR extends XMLHttpRequest {
  get responseXML() {
    if (this.readyState !== 4 || !this.responseText) return null;
    return new DOMParser().parseFromString(this.responseText, "text/xml");
  }
}

globalThis.WebSocket ??= WebSocket;
globalThis.XMLHttpRequest ??= BrowserXHR;

const [lib, service, domain, peer] = process.argv.slice(2);
const say = (o) => process.stdout.write(JSON.stringify(o) + "\n");
const fail = (e) => {
  say({ error: String(e?.stack || e) });
  process.exit(1);
};
setTimeout(() => fail("deadline passed"), 30_000).unref();

async function withXmppJs() {
  const { client, xml } = await import("@xmpp/client");
  const xmpp = client({ service, domain });
  xmpp.on("error", fail);
  let resolveBack;
  const back = new Promise((r) => (resolveBack = r));
  xmpp.on("stanza", (st) => {
    if (st.is("message") && st.getChildText("body") === "hello back") resolveBack(st);
  });
  const address = await xmpp.start();
  say({ online: address.toString() });
  await xmpp.iqCaller.request(xml("iq", { type: "get", to: domain }, xml("ping", { xmlns: "urn:xmpp:ping" })), 10_000);
  say({ ping: "ok" });
  await xmpp.send(xml("message", { to: peer, type: "chat" }, xml("body", {}, "hello from xmppjs")));
  const st = await back;
  say({ received: st.getChildText("body"), from: st.attrs.from });
  await xmpp.stop();
  say({ closed: true });
}

async function withStrophe() {
  const { Strophe, $iq, $msg } = await import("strophe.js");
  const conn = new Strophe.Connection(service);
  let onStatus = () => {};
  const reached = (want) => new Promise((resolve) => (onStatus = (s) => s === want && resolve()));
  const connected = reached(Strophe.Status.CONNECTED);
  conn.connect(domain, null, (s, condition) => {
    if ([Strophe.Status.CONNFAIL, Strophe.Status.AUTHFAIL, Strophe.Status.ERROR].includes(s))
      fail(`connection status ${s} ${condition ?? ""}`);
    onStatus(s);
  });
  await connected;
  say({ online: conn.jid });
  await new Promise((resolve, reject) =>
    conn.sendIQ($iq({ type: "get", to: domain }).c("ping", { xmlns: "urn:xmpp:ping" }), resolve, () => reject(new Error("ping failed")), 10_000),
  );
  say({ ping: "ok" });
  const back = new Promise((resolve) => {
    conn.addHandler((m) => {
      const body = m.getElementsByTagName("body")[0];
      if (body && Strophe.getText(body) === "hello back") {
        resolve({ body: "hello back", from: m.getAttribute("from") });
        return false;
      }
      return true;
    }, null, "message");
  });
  conn.send($msg({ to: peer, type: "chat" }).c("body").t("hello from strophe"));
  const got = await back;
  say({ received: got.body, from: got.from });
  const disconnected = reached(Strophe.Status.DISCONNECTED);
  conn.disconnect("test done");
  await disconnected;
  say({ closed: true });
}

(lib === "xmppjs" ? withXmppJs() : withStrophe()).then(() => process.exit(0), fail);
