#!/usr/bin/env node
// A meeting in real browsers against a running `lilt serve`: one headless Chromium (Debian's
// /usr/bin/chromium, driven by playwright-core), one browser context per participant, each
// loading the real lib-jitsi-meet bundle (vendor/, see scripts/browser-deps.sh) from a tiny
// static page served here, connecting over XMPP WebSocket, joining one room with fake camera
// and microphone, and reporting what it sees. A scenario (joins, mutes, leaves) is checked
// step by step against an expectation level; one JSON report goes to stdout.
//
//   node meet.mjs --participants 2 --room test --domain localhost --http-port 5280 \
//                 --expect joined --timeout 60
//
// Options:
//   --participants N     participants joining at the start (default 2)
//   --room NAME          room name, lower case (default "test")
//   --domain D           XMPP domain; MUC is conference.D, focus focus.D (default localhost)
//   --http-port P        lilt's plain HTTP listener: ws://127.0.0.1:P/xmpp-websocket
//   --ws-url URL         the WebSocket URL instead of --http-port
//   --expect LEVEL       connected | joined | media (default joined), checked after the
//                        initial joins and after every action:
//                          connected  each XMPP connection established (anonymous login)
//                          joined     + conference joined, each sees every other present one
//                          media      + remote audio and video tracks from every other present
//                                       participant, and inbound RTP bytes growing from each
//                                       of them (per kind, unless that track is muted)
//   --timeout S          bound on the whole run, in seconds (default 60); every wait is bounded
//   --mute I:KIND        action: participant I mutes audio|video; the others see it muted
//   --unmute I:KIND      action: the reverse
//   --leave I            action: participant I leaves; the others see USER_LEFT
//   --join I             action: participant I joins late (I > --participants)
//   --late K             action: K late joiners, one after the other
//   --wait S             action: wait S seconds
//   --dump-xmpp FILE     write every participant's focus and Jingle frames (in full) to FILE
//   --actions JSON       actions as JSON, e.g. [{"do":"mute","participant":1,"kind":"audio"},
//                        {"do":"leave","participant":3},{"do":"join","participant":4},
//                        {"do":"wait","seconds":2}]; appended where it stands among the others;
//                        {"do":"wait","seconds":S,"until":FILE} waits at most S seconds, until
//                        FILE exists
//   --conference JSON    extra options for initJitsiConference (merged)
//   --connection JSON    extra options for JitsiConnection (merged)
//   --token JWT          the token given to JitsiConnection (lib-jitsi-meet adds ?token= to the URL)
//   --resolution H       camera height asked of the fake camera (default 180; 720 makes Chrome
//                        send three simulcast layers)
//   --log-level L        lib-jitsi-meet log level in the pages (default info)
//   --relay-only         ICE through TURN only (lib-jitsi-meet's forceTurnRelay: the bridge
//                        connection's iceTransportPolicy 'relay', with the TURN servers the
//                        XMPP server advertised over XEP-0215); after the initial joins, every
//                        participant's selected ICE pair must use a relay candidate
//
// Exit status: 0 when every step held, 1 when one did not (or the run failed), 2 on bad usage.
// Page consoles go to stderr, each line prefixed with its participant ([p1] ...).

import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

import { CHROMIUM, CHROMIUM_ARGS } from './chromium.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const LEVELS = [ 'connected', 'joined', 'media' ];
const POLL_MS = 250;
// How long inbound bytes are watched for growth, once every track is there.
const GROWTH_WINDOW_MS = 2000;

// Runs in every page before any of its scripts: records each RTCPeerConnection (for getStats)
// and the XMPP WebSocket frames about the focus and Jingle (for the report).
const INIT_SCRIPT = () => {
    const pcs = [];
    const xmpp = [];
    window.__liltPCs = pcs;
    window.__liltXmpp = xmpp;
    const OrigPC = window.RTCPeerConnection;
    if (OrigPC) {
        class LiltPC extends OrigPC {
            constructor(...args) {
                super(...args);
                pcs.push(this);
            }
        }
        window.RTCPeerConnection = LiltPC;
        window.webkitRTCPeerConnection = LiltPC;
    }
    const interesting = /jitsi\.org\/protocol\/focus|urn:xmpp:jingle:1|from=["']focus\.|to=["']focus\./;
    const record = (dir, data) => {
        if (typeof data === 'string' && xmpp.length < 60 && interesting.test(data)) {
            xmpp.push({ t: Date.now(), dir, frame: data.slice(0, 32768) });
        }
    };
    const OrigWS = window.WebSocket;
    class LiltWS extends OrigWS {
        constructor(...args) {
            super(...args);
            this.addEventListener('message', e => record('in', e.data));
        }
        send(data) {
            record('out', data);
            return super.send(data);
        }
    }
    window.WebSocket = LiltWS;
};

const INDEX_HTML = `<!doctype html>
<html><head><meta charset="utf-8"><title>lilt meeting test</title>
<script src="/jquery.min.js"></script>
<script>window.jquery = window.jQuery;</script>
<script src="/lib-jitsi-meet.min.js"></script>
<script src="/page.js"></script>
</head><body></body></html>
`;

class Usage extends Error {}

function parseArgs(argv) {
    const o = {
        participants: 2,
        room: 'test',
        domain: 'localhost',
        wsUrl: null,
        expect: 'joined',
        timeout: 60,
        actions: [],
        conference: {},
        connection: {},
        logLevel: 'info',
        dumpXmpp: null,
        token: null,
        resolution: null
    };
    const need = (i, name) => {
        if (i + 1 >= argv.length) {
            throw new Usage(`${name} needs a value`);
        }
        return argv[i + 1];
    };
    const int = (v, name) => {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 0) {
            throw new Usage(`${name}: not a number: ${v}`);
        }
        return n;
    };
    const idxKind = (v, name) => {
        const [ i, kind ] = v.split(':');
        if (![ 'audio', 'video' ].includes(kind)) {
            throw new Usage(`${name} wants I:audio or I:video, got ${v}`);
        }
        return { participant: int(i, name), kind };
    };
    let late = 0;
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        switch (a) {
        case '--participants': o.participants = int(need(i, a), a); i++; break;
        case '--room': o.room = need(i, a); i++; break;
        case '--domain': o.domain = need(i, a); i++; break;
        case '--http-port': o.wsUrl = `ws://127.0.0.1:${int(need(i, a), a)}/xmpp-websocket`; i++; break;
        case '--ws-url': o.wsUrl = need(i, a); i++; break;
        case '--expect': o.expect = need(i, a); i++; break;
        case '--timeout': o.timeout = int(need(i, a), a); i++; break;
        case '--log-level': o.logLevel = need(i, a); i++; break;
        case '--relay-only': o.relayOnly = true; break;
        case '--dump-xmpp': o.dumpXmpp = need(i, a); i++; break;
        case '--conference': o.conference = JSON.parse(need(i, a)); i++; break;
        case '--connection': o.connection = JSON.parse(need(i, a)); i++; break;
        case '--token': o.token = need(i, a); i++; break;
        case '--resolution': o.resolution = int(need(i, a), a); i++; break;
        case '--mute': o.actions.push({ do: 'mute', ...idxKind(need(i, a), a) }); i++; break;
        case '--unmute': o.actions.push({ do: 'unmute', ...idxKind(need(i, a), a) }); i++; break;
        case '--leave': o.actions.push({ do: 'leave', participant: int(need(i, a), a) }); i++; break;
        case '--join': o.actions.push({ do: 'join', participant: int(need(i, a), a) }); i++; break;
        case '--wait': o.actions.push({ do: 'wait', seconds: Number(need(i, a)) }); i++; break;
        case '--late': {
            const k = int(need(i, a), a);
            i++;
            for (let j = 0; j < k; j++) {
                o.actions.push({ do: 'join', participant: null, late: ++late });
            }
            break;
        }
        case '--actions': {
            const list = JSON.parse(need(i, a));
            i++;
            if (!Array.isArray(list)) {
                throw new Usage('--actions wants a JSON array');
            }
            o.actions.push(...list);
            break;
        }
        case '-h':
        case '--help':
            throw new Usage('see the comment at the top of meet.mjs');
        default:
            throw new Usage(`unknown argument ${a}`);
        }
    }
    if (!o.wsUrl) {
        throw new Usage('--http-port or --ws-url is required');
    }
    if (o.relayOnly) {
        o.conference = { forceTurnRelay: true, ...o.conference };
    }
    if (!LEVELS.includes(o.expect)) {
        throw new Usage(`--expect is one of ${LEVELS.join(', ')}`);
    }
    if (o.participants < 1) {
        throw new Usage('--participants must be at least 1');
    }
    // Late joiners given by count take the next free indexes.
    let next = o.participants;
    for (const act of o.actions) {
        if (act.do === 'join') {
            if (act.participant === null || act.participant === undefined) {
                act.participant = ++next;
            } else {
                next = Math.max(next, act.participant);
            }
            delete act.late;
        }
        if (![ 'mute', 'unmute', 'leave', 'join', 'wait' ].includes(act.do)) {
            throw new Usage(`unknown action ${JSON.stringify(act)}`);
        }
        if ((act.do === 'mute' || act.do === 'unmute') && ![ 'audio', 'video' ].includes(act.kind)) {
            throw new Usage(`${act.do} wants kind audio or video: ${JSON.stringify(act)}`);
        }
    }

    return o;
}

const sleep = ms => new Promise(r => setTimeout(r, ms));

class Timeout extends Error {}

// A failed expectation (no stack trace in the report).
class Failed extends Error {}

// Resolve p, or throw Timeout(what) once the deadline has passed.
function bounded(p, deadline, what) {
    const left = deadline - Date.now();
    if (left <= 0) {
        return Promise.reject(new Timeout(what));
    }
    let timer;

    return Promise.race([
        p,
        new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Timeout(what)), left);
        })
    ]).finally(() => clearTimeout(timer));
}

function serveStatic() {
    const files = {
        '/jquery.min.js': path.join(HERE, 'node_modules/jquery/dist/jquery.min.js'),
        '/lib-jitsi-meet.min.js': path.join(HERE, 'vendor/lib-jitsi-meet.min.js'),
        '/page.js': path.join(HERE, 'page.js')
    };
    for (const f of Object.values(files)) {
        if (!fs.existsSync(f)) {
            throw new Failed(`${f} is missing; run scripts/browser-deps.sh`);
        }
    }
    const server = http.createServer((req, res) => {
        const url = new URL(req.url, 'http://x');
        if (url.pathname === '/keepalive') {
            // lib-jitsi-meet's WebSocket keep-alive GET (see Participant.start).
            res.writeHead(200, { 'content-type': 'text/plain' });
            res.end('ok');
        } else if (url.pathname === '/favicon.ico') {
            res.writeHead(204);
            res.end();
        } else if (url.pathname === '/' || url.pathname === '/index.html') {
            res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
            res.end(INDEX_HTML);
        } else if (files[url.pathname]) {
            res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' });
            fs.createReadStream(files[url.pathname]).pipe(res);
        } else {
            res.writeHead(404);
            res.end();
        }
    });

    return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => resolve(server));
    });
}

class Participant {
    constructor(index, opts) {
        this.index = index;
        this.name = `p${index}`;
        this.opts = opts;
        this.context = null;
        this.page = null;
        this.started = false;
        this.gone = false; // left on purpose
        this.last = null; // the last snapshot
    }

    async open(browser, baseUrl, deadline) {
        this.context = await bounded(browser.newContext(), deadline, `${this.name}: new browser context`);
        await this.context.addInitScript(INIT_SCRIPT);
        this.page = await this.context.newPage();
        this.page.on('console', m => process.stderr.write(`[${this.name}] ${m.type()}: ${m.text()}\n`));
        this.page.on('pageerror', e => process.stderr.write(`[${this.name}] pageerror: ${e.stack || e}\n`));
        this.page.on('crash', () => process.stderr.write(`[${this.name}] page crashed\n`));
        await bounded(this.page.goto(`${baseUrl}/index.html`), deadline, `${this.name}: load the test page`);
        const loaded = await this.eval(() => Boolean(window.lilt && window.lilt.bundleLoaded
            && window.JitsiMeetJS && window.JitsiMeetJS.JitsiConnection), undefined, deadline);
        if (!loaded) {
            throw new Failed(`${this.name}: the lib-jitsi-meet bundle did not load (JitsiMeetJS missing)`);
        }
    }

    async start(baseUrl, deadline) {
        const o = this.opts;
        await this.eval(args => window.lilt.start(args), {
            serviceUrl: o.wsUrl,
            token: o.token,
            resolution: o.resolution,
            // lib-jitsi-meet fetches the WebSocket URL over HTTP every minute (a shard check
            // for the proxy in front of Jitsi). Served from lilt's origin in a deployment; here
            // the page's origin differs from lilt's, so the fetch goes to this page's server
            // instead of failing on CORS and filling the logs.
            connection: { websocketKeepAliveUrl: `${baseUrl}/keepalive`, ...o.connection },
            domain: o.domain,
            room: o.room,
            name: this.name,
            logLevel: o.logLevel,
            conference: o.conference,
            noMedia: o.expect === 'connected'
        }, deadline);
        this.started = true;
    }

    eval(fn, arg, deadline) {
        return bounded(this.page.evaluate(fn, arg), deadline, `${this.name}: page call`);
    }

    async snapshot(deadline) {
        this.last = await this.eval(() => window.lilt.snapshot(), undefined, deadline);

        return this.last;
    }

    async close() {
        if (this.context) {
            await this.context.close().catch(() => {});
        }
    }
}

// Which participants should be in the room now.
const present = ps => ps.filter(p => p.started && !p.gone);

// Why `p` does not yet meet `level` towards the others present, or null when it does.
// `byId` maps participant ids (MUC nicks) to participants.
function shortfall(p, snap, level, others) {
    if (snap.connection !== 'established') {
        return `connection ${snap.connection}${snap.connectionError ? ` (${snap.connectionError})` : ''}`;
    }
    if (level === 'connected') {
        return null;
    }
    if (snap.conference !== 'joined') {
        return `conference ${snap.conference}${snap.conferenceError ? ` (${snap.conferenceError})` : ''}`
            + `; ${focusDiagnosis(snap)}`;
    }
    for (const q of others) {
        const qid = q.last && q.last.myId;
        const r = qid && snap.remote[qid];
        if (!r || !r.joined || r.left) {
            return `does not see ${q.name}${qid ? ` (${qid})` : ''} in the room`;
        }
    }
    if (level === 'joined') {
        return null;
    }
    for (const q of others) {
        const qid = q.last.myId;
        for (const kind of [ 'audio', 'video' ]) {
            // A muted source may have been removed from the session; it is not required.
            if (remoteMuted(snap, qid, kind)) {
                continue;
            }
            if (!snap.tracks.some(t => t.participant === qid && t.type === kind && !t.removed)) {
                return `has no remote ${kind} track from ${q.name} (${qid})`;
            }
        }
    }

    return null;
}

// Whether the last TRACK_MUTE_CHANGED this participant saw for `id`'s `kind` said muted.
function remoteMuted(snap, id, kind) {
    const seen = snap.mutes.filter(m => !m.local && m.participant === id && m.type === kind);

    return seen.length > 0 && seen[seen.length - 1].muted;
}

// Inbound bytes per (participant id, kind) in one snapshot.
function bytesBy(snap) {
    const m = new Map();
    for (const s of snap.inbound) {
        if (s.participant) {
            const k = `${s.participant}/${s.kind}`;
            m.set(k, (m.get(k) || 0) + s.bytes);
        }
    }

    return m;
}

// Each open peer connection's selected ICE pair, per participant, as
// 'TYPE/PROTOCOL -> REMOTE_IP:PORT' (the protocol to the TURN server for a relay candidate);
// throws Failed unless each participant has one and all are relayed.
async function relayCheck(ps, deadline) {
    const out = [];
    for (const p of ps) {
        const types = await p.eval(async () => {
            const found = [];
            for (const pc of window.__liltPCs || []) {
                if (pc.signalingState === 'closed') {
                    continue;
                }
                const stats = await pc.getStats();
                stats.forEach(s => {
                    if (s.type === 'transport' && s.selectedCandidatePairId) {
                        const pair = stats.get(s.selectedCandidatePairId);
                        const local = pair && stats.get(pair.localCandidateId);
                        const remote = pair && stats.get(pair.remoteCandidateId);
                        found.push(local && remote
                            ? `${local.candidateType}/${local.relayProtocol || local.protocol}`
                                + ` -> ${remote.address || remote.ip}:${remote.port}`
                            : 'none');
                    }
                });
            }

            return found;
        }, undefined, deadline);
        out.push({ name: p.name, selected: types });
        if (types.length === 0 || types.some(t => !t.startsWith('relay/'))) {
            throw new Failed(`${p.name}'s selected ICE pairs are not all relayed: ${JSON.stringify(types)}`);
        }
    }

    return out;
}

// Wait until every present participant meets `level`; for media, then watch inbound bytes
// grow from every other present participant for each unmuted kind.
async function check(ps, level, deadline) {
    const now = present(ps);
    let why = null;
    for (;;) {
        for (const p of now) {
            await p.snapshot(deadline);
        }
        why = null;
        for (const p of now) {
            const s = shortfall(p, p.last, level, now.filter(q => q !== p));
            if (s) {
                why = `${p.name} ${s}`;
                break;
            }
        }
        if (!why) {
            break;
        }
        // lib-jitsi-meet does not retry these by itself (the app would): no point waiting.
        const dead = now.find(p => p.last.connection === 'failed' || p.last.conference === 'failed');
        if (dead) {
            throw new Failed(`${dead.name} ${shortfall(dead, dead.last, level, [])}`);
        }
        if (Date.now() + POLL_MS >= deadline) {
            throw new Timeout(why);
        }
        await sleep(POLL_MS);
    }
    if (level !== 'media') {
        return;
    }
    // Bytes: first sample now, then poll until each pair grew or the deadline.
    const first = new Map(now.map(p => [ p, bytesBy(p.last) ]));
    const started = Date.now();
    for (;;) {
        await sleep(Math.min(POLL_MS * 2, Math.max(0, deadline - Date.now())));
        why = null;
        for (const p of now) {
            const snap = await p.snapshot(deadline);
            const after = bytesBy(snap);
            for (const q of now.filter(x => x !== p)) {
                const qid = q.last.myId;
                for (const kind of [ 'audio', 'video' ]) {
                    const track = snap.tracks.find(t => t.participant === qid && t.type === kind && !t.removed);
                    if ((track && track.muted) || remoteMuted(snap, qid, kind)) {
                        continue;
                    }
                    const k = `${qid}/${kind}`;
                    if (!((after.get(k) || 0) > (first.get(p).get(k) || 0))) {
                        why = why || `${p.name} receives no growing ${kind} bytes from ${q.name} (${qid})`;
                    }
                }
            }
        }
        if (!why && Date.now() - started >= GROWTH_WINDOW_MS) {
            return;
        }
        if (Date.now() >= deadline) {
            throw new Timeout(why || 'inbound bytes check ran out of time');
        }
    }
}

// Wait until every present participant but `actor` passes `why` (null: it does; else a text
// saying what it lacks).
async function waitOthers(ps, actor, deadline, why) {
    const others = present(ps).filter(p => p !== actor);
    for (;;) {
        let missing = null;
        for (const p of others) {
            const snap = await p.snapshot(deadline);
            const w = why(snap);
            if (w && !missing) {
                missing = `${p.name} ${w}`;
            }
        }
        if (!missing) {
            return;
        }
        if (Date.now() + POLL_MS >= deadline) {
            throw new Timeout(missing);
        }
        await sleep(POLL_MS);
    }
}

// What became of the conference request to the focus (Jicofo's protocol), from the frames the
// page recorded: the usual reason a browser never joins.
function focusDiagnosis(snap) {
    const frames = (snap.xmpp || []).filter(f => /jitsi\.org\/protocol\/focus/.test(f.frame));
    const sent = frames.filter(f => f.dir === 'out');
    if (!sent.length) {
        return 'no conference request to the focus was sent yet';
    }
    const to = (/to=["']([^"']+)["']/.exec(sent[0].frame) || [])[1] || '?';
    const replies = frames.filter(f => f.dir === 'in');
    if (!replies.length) {
        return `the conference request to ${to} (${sent.length} sent) is unanswered`;
    }
    const last = replies[replies.length - 1].frame;
    if (/type=["']error["']/.test(last)) {
        const cond = (/<error[^>]*>\s*<([a-z-]+)/.exec(last) || [])[1] || 'unknown';
        return `the conference request to ${to} (${sent.length} sent) was refused: ${cond}`;
    }
    if (/ready=["']false["']/.test(last)) {
        return `the focus ${to} answered ready=false`;
    }
    if (/ready=["']true["']/.test(last)) {
        return `the focus ${to} answered ready=true, but the MUC join did not complete`;
    }

    return `the focus ${to} answered: ${last.slice(0, 300)}`;
}

function xmppSummary(snap) {
    const frames = (snap && snap.xmpp) || [];
    const conf = frames.filter(f => /jitsi\.org\/protocol\/focus/.test(f.frame));

    return conf.map(f => `${f.dir}: ${f.frame.slice(0, 3000)}`).slice(0, 6);
}

function participantReport(p) {
    const s = p.last;
    if (!s) {
        return { index: p.index, name: p.name, started: p.started, snapshot: null };
    }
    const nameOf = id => {
        const r = s.remote[id];

        return r && r.name ? r.name : null;
    };

    return {
        index: p.index,
        name: p.name,
        id: s.myId,
        left: p.gone,
        connection: s.connection,
        connectionError: s.connectionError,
        conference: s.conference,
        conferenceError: s.conferenceError,
        localTracks: s.localTracks,
        sees: Object.entries(s.remote).filter(([ , r ]) => r.joined && !r.left)
            .map(([ id, r ]) => ({ id, name: r.name })),
        sawLeave: Object.entries(s.remote).filter(([ , r ]) => r.left)
            .map(([ id, r ]) => ({ id, name: r.name })),
        tracks: s.tracks.map(t => ({ ...t, name: nameOf(t.participant) })),
        mutes: s.mutes,
        inbound: s.inbound.map(x => ({ ...x, name: x.participant ? nameOf(x.participant) : null })),
        outbound: s.outbound,
        peerConnections: s.peerConnections,
        focusFrames: xmppSummary(s),
        errors: s.errors,
        events: s.events
    };
}

async function main() {
    let o;
    try {
        o = parseArgs(process.argv.slice(2));
    } catch (e) {
        if (e instanceof Usage || e instanceof SyntaxError) {
            process.stderr.write(`meet.mjs: ${e.message}\n`);
            process.exit(2);
        }
        throw e;
    }
    const deadline = Date.now() + o.timeout * 1000;
    const report = {
        ok: false,
        expect: o.expect,
        room: o.room,
        domain: o.domain,
        serviceUrl: o.wsUrl,
        failure: null,
        steps: [],
        participants: []
    };
    const ps = [];
    let browser = null;
    let server = null;
    let finished = false;
    const finish = async code => {
        if (finished) {
            return;
        }
        finished = true;
        report.participants = ps.map(participantReport);
        if (o.dumpXmpp) {
            const frames = ps.map(p => ({ name: p.name, xmpp: (p.last && p.last.xmpp) || [] }));
            fs.writeFileSync(o.dumpXmpp, JSON.stringify(frames, null, 1));
        }
        // Always close the browser (bounded; playwright kills it on exit anyway).
        if (browser) {
            await Promise.race([ browser.close().catch(() => {}), sleep(10000) ]);
        }
        if (server) {
            server.close();
            server.closeAllConnections?.();
        }
        process.stdout.write(`${JSON.stringify(report)}\n`, () => process.exit(code));
    };
    // A last resort if something ignores its deadline.
    const watchdog = setTimeout(() => {
        report.failure = report.failure || `watchdog: the run exceeded ${o.timeout} s + 20 s`;
        finish(1);
    }, o.timeout * 1000 + 20000);
    watchdog.unref();
    for (const sig of [ 'SIGINT', 'SIGTERM' ]) {
        process.on(sig, () => {
            report.failure = report.failure || `interrupted by ${sig}`;
            finish(1);
        });
    }

    let step = null;
    const run = async (name, fn) => {
        step = { step: name, ok: false };
        report.steps.push(step);
        const t = Date.now();
        await fn();
        step.ok = true;
        step.ms = Date.now() - t;
    };

    try {
        server = await serveStatic();
        const baseUrl = `http://127.0.0.1:${server.address().port}`;
        // launch() gives Chromium a fresh temporary user-data-dir (playwright_chromiumdev_profile-*
        // under the temp dir), removed again when the browser closes: no state between runs.
        browser = await bounded(chromium.launch({
            executablePath: CHROMIUM,
            headless: true,
            args: CHROMIUM_ARGS
        }), deadline, 'launch chromium');
        report.chromium = browser.version();
        const byIndex = i => {
            let p = ps.find(x => x.index === i);
            if (!p) {
                p = new Participant(i, o);
                ps.push(p);
            }

            return p;
        };
        const join = async p => {
            await p.open(browser, baseUrl, deadline);
            await p.start(baseUrl, deadline);
        };

        await run(`join ${o.participants}`, async () => {
            const initial = [];
            for (let i = 1; i <= o.participants; i++) {
                initial.push(byIndex(i));
            }
            await Promise.all(initial.map(join));
            await check(ps, o.expect, deadline);
        });
        if (o.relayOnly) {
            await run('relay-only: every selected ICE pair is relayed', async () => {
                report.relay = await relayCheck(present(ps), deadline);
            });
        }

        for (const act of o.actions) {
            const p = act.participant ? byIndex(act.participant) : null;
            await run(JSON.stringify(act), async () => {
                switch (act.do) {
                case 'wait': {
                    const end = Math.min(Date.now() + act.seconds * 1000, deadline);
                    // With `until`: only until that file exists (a test driving the network
                    // from outside says it is done).
                    while (Date.now() < end && !(act.until && fs.existsSync(act.until))) {
                        await sleep(Math.min(POLL_MS, Math.max(0, end - Date.now())));
                    }
                    break;
                }
                case 'join':
                    if (p.started) {
                        throw new Failed(`${p.name} has already joined`);
                    }
                    await join(p);
                    break;
                case 'mute':
                case 'unmute': {
                    const muted = act.do === 'mute';
                    if (!p.started || p.gone) {
                        throw new Failed(`${p.name} is not in the room`);
                    }
                    await p.eval(([ kind, m ]) => window.lilt.setMuted(kind, m), [ act.kind, muted ], deadline);
                    await p.snapshot(deadline);
                    const id = p.last.myId;
                    await waitOthers(ps, p, deadline, snap => {
                        const t = snap.tracks.find(x => x.participant === id && x.type === act.kind && !x.removed);
                        if (!t) {
                            return `has no remote ${act.kind} track of ${p.name} (${id}) to see ${act.do}d`;
                        }

                        return t.muted === muted ? null : `did not see ${p.name}'s ${act.kind} ${act.do}d`;
                    });
                    break;
                }
                case 'leave': {
                    if (!p.started || p.gone) {
                        throw new Failed(`${p.name} is not in the room`);
                    }
                    await p.snapshot(deadline);
                    const id = p.last.myId;
                    await p.eval(() => window.lilt.leave(), undefined, deadline);
                    p.gone = true;
                    await waitOthers(ps, p, deadline, snap => (snap.remote[id] && snap.remote[id].left
                        ? null : `did not see ${p.name} (${id}) leave`));
                    break;
                }
                }
                // After every action the expectation holds again among those present.
                await check(ps, o.expect, deadline);
            });
        }
        report.ok = true;
    } catch (e) {
        if (step) {
            step.error = e.message;
        }
        const where = step ? `${step.step}: ` : '';
        if (e instanceof Timeout) {
            report.failure = `${where}not within ${o.timeout} s: ${e.message}`;
        } else if (e instanceof Failed) {
            report.failure = `${where}${e.message}`;
        } else {
            report.failure = `${where}${e.stack || e}`;
        }
    }
    // The last state of everyone, for the report (bounded: a few seconds past the deadline).
    const grace = Math.max(deadline, Date.now()) + 5000;
    for (const p of ps.filter(x => x.page)) {
        await p.snapshot(grace).catch(() => {});
    }
    await finish(report.ok ? 0 : 1);
}

main().catch(e => {
    process.stderr.write(`meet.mjs: ${e.stack || e}\n`);
    process.stdout.write(`${JSON.stringify({ ok: false, failure: String(e.stack || e) })}\n`, () => process.exit(1));
});
