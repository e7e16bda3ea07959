#!/usr/bin/env node
// Audio moderation in real browsers against a running `lilt serve` whose vhost runs the
// av-moderation plugin: one headless Chromium (chromium.mjs), one browser context per
// participant, each loading the real lib-jitsi-meet bundle (vendor/) and joining one room over
// XMPP WebSocket without media. Then, through lib-jitsi-meet's own API:
//
//   1. p1 joins first and is made owner (moderator) by the focus; p2 joins and is not.
//   2. p2 sends the component an enable command itself (the client API would refuse it):
//      nobody hears of moderation.
//   3. p1 enableAVModeration('audio'): p2 gets AV_MODERATION_CHANGED (enabled, actor p1).
//   4. p1 avModerationApprove('audio', p2): p2 gets AV_MODERATION_APPROVED, p1
//      AV_MODERATION_PARTICIPANT_APPROVED (p2).
//   5. p1 avModerationReject('audio', p2): p2 gets AV_MODERATION_REJECTED, p1
//      AV_MODERATION_PARTICIPANT_REJECTED (p2).
//   6. p3 joins late: it gets AV_MODERATION_CHANGED (enabled, actor p1).
//   7. p1 disableAVModeration('audio'): p2 and p3 get AV_MODERATION_CHANGED (disabled).
//
// Each step waits (bounded) for what it expects; the events every page saw, with their
// payloads, and the av_moderation frames of its WebSocket go into one JSON report on stdout.
//
//   node av-moderation.mjs --http-port 5280 --domain localhost --room avmod --timeout 90
//
// Exit status: 0 when every step held, 1 when one did not, 2 on bad usage. Page consoles go
// to stderr, each line prefixed with its participant ([p1] ...).

import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

import { CHROMIUM, CHROMIUM_ARGS } from './chromium.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const POLL_MS = 200;
// How long step 2 waits for a (wrong) reaction to the refused command.
const QUIET_MS = 1500;

// Before any page script: record the WebSocket frames about av_moderation.
const INIT_SCRIPT = () => {
    const frames = [];
    window.__avFrames = frames;
    const record = (dir, data) => {
        if (typeof data === 'string' && frames.length < 100 && data.includes('av_moderation')) {
            frames.push({ t: Date.now(), dir, frame: data.slice(0, 4000) });
        }
    };
    const OrigWS = window.WebSocket;
    class AvWS extends OrigWS {
        constructor(...args) {
            super(...args);
            this.addEventListener('message', e => record('in', e.data));
        }
        send(data) {
            record('out', data);
            return super.send(data);
        }
    }
    window.WebSocket = AvWS;
};

// The page's participant, driven through `window.av`.
const PAGE_SCRIPT = () => {
    const state = {
        connection: 'none',
        conference: 'none',
        error: null,
        myId: null,
        remote: [],
        events: [],
        errors: []
    };
    let connection = null;
    let conference = null;
    const ev = (event, detail) => state.events.push({ event, t: Date.now(), ...(detail || {}) });
    const idOf = p => (p && p.getId ? p.getId() : null);

    function start(o) {
        const { events: E } = JitsiMeetJS;
        const C = E.conference;
        JitsiMeetJS.init({});
        JitsiMeetJS.setLogLevel(JitsiMeetJS.logLevels.INFO);
        connection = new JitsiMeetJS.JitsiConnection(null, null, {
            serviceUrl: o.serviceUrl,
            hosts: { domain: o.domain, muc: `conference.${o.domain}`, focus: `focus.${o.domain}` },
            websocketKeepAliveUrl: o.keepAliveUrl
        });
        connection.addEventListener(E.connection.CONNECTION_FAILED, e => {
            state.connection = 'failed';
            state.error = String(e);
        });
        connection.addEventListener(E.connection.CONNECTION_ESTABLISHED, () => {
            state.connection = 'established';
            conference = connection.initJitsiConference(o.room, {
                p2p: { enabled: false },
                openBridgeChannel: 'websocket'
            });
            conference.on(C.CONFERENCE_JOINED, () => {
                state.conference = 'joined';
                state.myId = conference.myUserId();
            });
            conference.on(C.CONFERENCE_FAILED, e => {
                state.conference = 'failed';
                state.error = String(e);
            });
            conference.on(C.USER_JOINED, id => state.remote.push(id));
            conference.on(C.USER_ROLE_CHANGED, (id, role) => ev('USER_ROLE_CHANGED', { id, role }));
            conference.on(C.AV_MODERATION_CHANGED, ({ enabled, mediaType, actor }) =>
                ev('AV_MODERATION_CHANGED', { enabled, mediaType, actor: idOf(actor) }));
            conference.on(C.AV_MODERATION_APPROVED, ({ mediaType }) =>
                ev('AV_MODERATION_APPROVED', { mediaType }));
            conference.on(C.AV_MODERATION_REJECTED, ({ mediaType }) =>
                ev('AV_MODERATION_REJECTED', { mediaType }));
            conference.on(C.AV_MODERATION_PARTICIPANT_APPROVED, ({ mediaType, participant }) =>
                ev('AV_MODERATION_PARTICIPANT_APPROVED', { mediaType, participant: idOf(participant) }));
            conference.on(C.AV_MODERATION_PARTICIPANT_REJECTED, ({ mediaType, participant }) =>
                ev('AV_MODERATION_PARTICIPANT_REJECTED', { mediaType, participant: idOf(participant) }));
            conference.setDisplayName(o.name);
            state.conference = 'joining';
            conference.join();
        });
        state.connection = 'connecting';
        connection.connect({});
    }

    // What the moderator's client does, through lib-jitsi-meet's API.
    function act(what, media, id) {
        switch (what) {
        case 'enable': conference.enableAVModeration(media); break;
        case 'disable': conference.disableAVModeration(media); break;
        case 'approve': conference.avModerationApprove(media, id); break;
        case 'reject': conference.avModerationReject(media, id); break;
        default: throw new Error(`unknown action ${what}`);
        }
    }

    // A command the API would not send for a non-moderator, sent as raw XML.
    function sendRaw(xml) {
        const el = new DOMParser().parseFromString(xml, 'text/xml').documentElement;
        connection.xmpp.connection.send(el);
    }

    function snapshot() {
        return {
            ...state,
            moderator: Boolean(conference && conference.isModerator()),
            supported: Boolean(conference && conference.isAVModerationSupported()),
            component: connection && connection.xmpp ? connection.xmpp.avModerationComponentAddress || null : null,
            frames: window.__avFrames || []
        };
    }

    window.av = { start, act, sendRaw, snapshot };
};

const INDEX_HTML = `<!doctype html>
<html><head><meta charset="utf-8"><title>lilt av moderation test</title>
<script src="/jquery.min.js"></script>
<script>window.jquery = window.jQuery;</script>
<script src="/lib-jitsi-meet.min.js"></script>
<script src="/av.js"></script>
</head><body></body></html>
`;

class Usage extends Error {}
class Failed extends Error {}

function parseArgs(argv) {
    const o = { domain: 'localhost', room: 'avmod', timeout: 90, wsUrl: null };
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        const v = argv[i + 1];
        if (v === undefined) {
            throw new Usage(`${a} needs a value`);
        }
        switch (a) {
        case '--http-port': o.wsUrl = `ws://127.0.0.1:${Number(v)}/xmpp-websocket`; break;
        case '--ws-url': o.wsUrl = v; break;
        case '--domain': o.domain = v; break;
        case '--room': o.room = v; break;
        case '--timeout': o.timeout = Number(v); break;
        default: throw new Usage(`unknown argument ${a}`);
        }
        i++;
    }
    if (!o.wsUrl) {
        throw new Usage('--http-port or --ws-url is required');
    }

    return o;
}

const sleep = ms => new Promise(r => setTimeout(r, ms));

function serveStatic() {
    const files = {
        '/jquery.min.js': path.join(HERE, 'node_modules/jquery/dist/jquery.min.js'),
        '/lib-jitsi-meet.min.js': path.join(HERE, 'vendor/lib-jitsi-meet.min.js')
    };
    for (const f of Object.values(files)) {
        if (!fs.existsSync(f)) {
            throw new Failed(`${f} is missing; run scripts/browser-deps.sh`);
        }
    }
    const server = http.createServer((req, res) => {
        const url = new URL(req.url, 'http://x');
        if (url.pathname === '/' || url.pathname === '/index.html') {
            res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
            res.end(INDEX_HTML);
        } else if (url.pathname === '/av.js') {
            res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' });
            res.end(`(${PAGE_SCRIPT.toString()})();\n`);
        } else if (files[url.pathname]) {
            res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' });
            fs.createReadStream(files[url.pathname]).pipe(res);
        } else {
            // The WebSocket keep-alive GET and anything else.
            res.writeHead(200, { 'content-type': 'text/plain' });
            res.end('ok');
        }
    });

    return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => resolve(server));
    });
}

async function main() {
    let o;
    try {
        o = parseArgs(process.argv.slice(2));
    } catch (e) {
        process.stderr.write(`av-moderation.mjs: ${e.message}\n`);
        process.exit(2);
    }
    const deadline = Date.now() + o.timeout * 1000;
    const report = { ok: false, failure: null, steps: [], participants: [] };
    const ps = [];
    let browser = null;
    let server = null;
    let step = null;

    const bounded = (p, what) => {
        const left = deadline - Date.now();
        let timer;

        return Promise.race([
            p,
            new Promise((_, reject) => {
                timer = setTimeout(() => reject(new Failed(`not within ${o.timeout} s: ${what}`)),
                    Math.max(0, left));
            })
        ]).finally(() => clearTimeout(timer));
    };
    const snap = async p => {
        p.last = await bounded(p.page.evaluate(() => window.av.snapshot()), `${p.name}: snapshot`);

        return p.last;
    };
    // Poll until `why(snapshots)` is null (it returns what is still missing).
    const until = async (what, why) => {
        for (;;) {
            const snaps = [];
            for (const p of ps) {
                snaps.push(await snap(p));
            }
            const missing = why(snaps);
            if (!missing) {
                return;
            }
            if (Date.now() + POLL_MS >= deadline) {
                throw new Failed(`not within ${o.timeout} s: ${what}: ${missing}`);
            }
            await sleep(POLL_MS);
        }
    };
    const run = async (name, fn) => {
        step = { step: name, ok: false };
        report.steps.push(step);
        await fn();
        step.ok = true;
    };
    const has = (s, event, fields) => s.events.some(e => e.event === event
        && Object.entries(fields).every(([ k, v ]) => e[k] === v));
    const act = (p, what, media, id) => bounded(p.page.evaluate(
        ([ w, m, i ]) => window.av.act(w, m, i), [ what, media, id ]), `${p.name}: ${what}`);

    let baseUrl = null;
    const open = async index => {
        const p = { index, name: `p${index}`, last: null };
        p.context = await bounded(browser.newContext(), `${p.name}: browser context`);
        await p.context.addInitScript(INIT_SCRIPT);
        p.page = await p.context.newPage();
        p.page.on('console', m => process.stderr.write(`[${p.name}] ${m.type()}: ${m.text()}\n`));
        p.page.on('pageerror', e => process.stderr.write(`[${p.name}] pageerror: ${e.stack || e}\n`));
        await bounded(p.page.goto(`${baseUrl}/index.html`), `${p.name}: load the page`);
        await bounded(p.page.evaluate(args => window.av.start(args), {
            serviceUrl: o.wsUrl,
            domain: o.domain,
            room: o.room,
            name: p.name,
            keepAliveUrl: `${baseUrl}/keepalive`
        }), `${p.name}: start`);
        ps.push(p);

        return p;
    };
    const joined = (p, moderator) => s => {
        const me = s[ps.indexOf(p)];
        if (me.connection === 'failed' || me.conference === 'failed') {
            throw new Failed(`${p.name}: ${me.connection}/${me.conference}: ${me.error}`);
        }
        if (me.conference !== 'joined') {
            return `${p.name} is ${me.conference}`;
        }
        if (!me.supported) {
            return `${p.name} found no av_moderation component`;
        }
        if (moderator !== null && me.moderator !== moderator) {
            return `${p.name} is ${moderator ? 'not yet' : 'unexpectedly'} a moderator`;
        }

        return null;
    };

    try {
        server = await serveStatic();
        baseUrl = `http://127.0.0.1:${server.address().port}`;
        browser = await bounded(chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS }),
            'launch chromium');
        report.chromium = browser.version();

        const p1 = await open(1);
        await run('p1 joins and is made moderator', () => until('p1 moderator', joined(p1, true)));
        const p2 = await open(2);
        await run('p2 joins, not a moderator', () => until('p2 joined', s => joined(p2, false)(s)
            || (s[0].remote.includes(s[1].myId) ? null : 'p1 does not see p2')));
        const id1 = p1.last.myId;
        const id2 = p2.last.myId;

        await run('a non-moderator cannot enable moderation', async () => {
            const component = p2.last.component;
            await bounded(p2.page.evaluate(xml => window.av.sendRaw(xml),
                `<message xmlns="jabber:client" to="${component}"><av_moderation enable="true" mediaType="audio"/></message>`),
                'p2: raw enable');
            await sleep(QUIET_MS);
            await until('quiet', s => (s.some(x => has(x, 'AV_MODERATION_CHANGED', {}))
                ? 'someone heard of moderation' : null));
        });

        await run('p1 enables audio moderation', async () => {
            await act(p1, 'enable', 'audio');
            await until('p2 sees it enabled', s => (has(s[1], 'AV_MODERATION_CHANGED',
                { enabled: true, mediaType: 'audio', actor: id1 }) ? null : 'p2 saw no AV_MODERATION_CHANGED'));
        });

        await run('p1 approves p2', async () => {
            await act(p1, 'approve', 'audio', id2);
            await until('approval seen', s => (has(s[1], 'AV_MODERATION_APPROVED', { mediaType: 'audio' })
                ? has(s[0], 'AV_MODERATION_PARTICIPANT_APPROVED', { mediaType: 'audio', participant: id2 })
                    ? null : 'p1 saw no AV_MODERATION_PARTICIPANT_APPROVED'
                : 'p2 saw no AV_MODERATION_APPROVED'));
        });

        await run('p1 rejects p2', async () => {
            await act(p1, 'reject', 'audio', id2);
            await until('rejection seen', s => (has(s[1], 'AV_MODERATION_REJECTED', { mediaType: 'audio' })
                ? has(s[0], 'AV_MODERATION_PARTICIPANT_REJECTED', { mediaType: 'audio', participant: id2 })
                    ? null : 'p1 saw no AV_MODERATION_PARTICIPANT_REJECTED'
                : 'p2 saw no AV_MODERATION_REJECTED'));
        });

        const p3 = await open(3);
        await run('a late joiner learns moderation is on', () => until('p3 learns', s => joined(p3, false)(s)
            || (has(s[2], 'AV_MODERATION_CHANGED', { enabled: true, mediaType: 'audio', actor: id1 })
                ? null : 'p3 saw no AV_MODERATION_CHANGED')));

        await run('p1 disables audio moderation', async () => {
            await act(p1, 'disable', 'audio');
            await until('disabled seen', s => [ 1, 2 ].map(i => (has(s[i], 'AV_MODERATION_CHANGED',
                { enabled: false, mediaType: 'audio' }) ? null : `p${i + 1} did not see it disabled`))
                .find(x => x) || null);
        });
        report.ok = true;
    } catch (e) {
        if (step) {
            step.error = e.message;
        }
        report.failure = `${step ? `${step.step}: ` : ''}${e instanceof Failed ? e.message : e.stack || e}`;
    }
    for (const p of ps) {
        await snap(p).catch(() => {});
        const s = p.last || {};
        report.participants.push({
            index: p.index,
            name: p.name,
            id: s.myId || null,
            moderator: s.moderator,
            supported: s.supported,
            component: s.component,
            conference: s.conference,
            error: s.error,
            events: s.events || [],
            frames: s.frames || []
        });
    }
    if (browser) {
        await Promise.race([ browser.close().catch(() => {}), sleep(10000) ]);
    }
    if (server) {
        server.close();
        server.closeAllConnections?.();
    }
    process.stdout.write(`${JSON.stringify(report)}\n`, () => process.exit(report.ok ? 0 : 1));
}

main().catch(e => {
    process.stderr.write(`av-moderation.mjs: ${e.stack || e}\n`);
    process.stdout.write(`${JSON.stringify({ ok: false, failure: String(e.stack || e) })}\n`, () => process.exit(1));
});
