#!/usr/bin/env node
// The meeting page (host/web) in real browsers, as a person uses it: headless Chromium opens
// the page that a running `lilt serve` serves, picks a room on `/`, enters a name on the
// pre-join screen, joins; a second person opens `/<room>` directly and joins too. Everything is
// done through the page's own DOM (typing, clicking) and checked in its DOM: each sees the
// other's tile with the right name, a chat message arrives, leaving (by the button, and by
// closing the tab after joining again) removes the tile. What
// needs media through the SFU (remote tracks, mute seen remotely, video playing) is observed
// and reported, and required only with --require-media. One JSON report goes to stdout.
//
//   node meeting-page.mjs --url http://127.0.0.1:5280 --room team-sync --timeout 90 \
//        [--brand-name "Acme Meet"] [--welcome "Welcome to"] [--require-media]
//
// Options:
//   --url URL          the server's HTTP origin (the page is at URL/)
//   --room NAME        the room typed on the home page (typed in upper case on purpose: the
//                      page must lower-case it)
//   --timeout S        bound on the whole run (default 90); every wait is bounded
//   --brand-name TEXT  the brand name both pages must show (branding plugin)
//   --welcome TEXT     text the branding plugin's welcome message must contain, in the chat
//   --media-wait S     how long to watch for remote media before leaving (default 10)
//   --require-media    fail unless each sees the other's video playing and a mute
//   --expect-https     the vhost refuses plain ws:// logins: the page must move to HTTPS
//   --login USER:PASS  the vhost has accounts: the pre-join screen must ask for them
//   --jwt TOKEN        Alice opens /?jwt=TOKEN; her XMPP WebSocket must carry token=TOKEN
//   --extra N          N more people (Carol, Dave, ...) join by URL after Bob; everyone must
//                      show everyone else's tile by name; then they close their tabs
//
// Exit status: 0 when every required check held, 1 otherwise, 2 on bad usage. Page consoles go
// to stderr, prefixed [alice] / [bob].

import { chromium } from 'playwright-core';

import { CHROMIUM, CHROMIUM_ARGS } from './chromium.mjs';

const POLL_MS = 200;

function parseArgs(argv) {
    const o = { url: null, room: 'page-test', timeout: 90, brandName: null, welcome: null, mediaWait: 10, requireMedia: false, expectHttps: false, login: null, jwt: null, extra: 0 };
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        const v = () => {
            if (i + 1 >= argv.length) {
                throw new Error(`${a} needs a value`);
            }

            return argv[++i];
        };
        switch (a) {
        case '--url': o.url = v().replace(/\/+$/, ''); break;
        case '--room': o.room = v(); break;
        case '--timeout': o.timeout = Number(v()); break;
        case '--brand-name': o.brandName = v(); break;
        case '--welcome': o.welcome = v(); break;
        case '--media-wait': o.mediaWait = Number(v()); break;
        case '--require-media': o.requireMedia = true; break;
        case '--expect-https': o.expectHttps = true; break;
        case '--login': o.login = v(); break;
        case '--jwt': o.jwt = v(); break;
        case '--extra': o.extra = Number(v()); break;
        default: throw new Error(`unknown argument ${a}`);
        }
    }
    if (!o.url) {
        throw new Error('--url is required');
    }

    return o;
}

const sleep = ms => new Promise(r => setTimeout(r, ms));

class Check extends Error {}

async function main() {
    let o;
    try {
        o = parseArgs(process.argv.slice(2));
    } catch (e) {
        process.stderr.write(`meeting-page.mjs: ${e.message}\n`);
        process.exit(2);
    }
    const deadline = Date.now() + o.timeout * 1000;
    const report = { ok: false, failure: null, steps: [], media: {}, pages: {}, websockets: {} };
    const step = (name, detail) => {
        report.steps.push({ t: Date.now(), step: name, ...(detail || {}) });
        process.stderr.write(`meeting-page.mjs: ${name}${detail ? ` ${JSON.stringify(detail)}` : ''}\n`);
    };
    const left = () => Math.max(0, deadline - Date.now());

    // Poll `fn` (in node) until it returns a truthy value; throw Check(what) at the deadline or
    // after `ms`.
    async function until(what, fn, ms = left()) {
        const end = Math.min(deadline, Date.now() + ms);
        let last;
        for (;;) {
            try {
                last = await fn();
            } catch (e) {
                last = null;
                if (!/Execution context was destroyed|navigation/i.test(String(e))) {
                    throw e;
                }
            }
            if (last) {
                return last;
            }
            if (Date.now() >= end) {
                throw new Check(`not within ${Math.round(ms / 1000)} s: ${what}`);
            }
            await sleep(POLL_MS);
        }
    }

    const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
    const pages = {};
    const snap = async who => {
        try {
            return await pages[who].evaluate(() => window.liltPage && window.liltPage.snapshot());
        } catch (e) {
            return { error: String(e) };
        }
    };
    try {
        async function open(who) {
            // The server's certificate is self-signed when the page moves to HTTPS.
            const context = await browser.newContext({ ignoreHTTPSErrors: true });
            const page = await context.newPage();
            page.on('console', m => process.stderr.write(`[${who}] ${m.type()}: ${m.text()}\n`));
            page.on('pageerror', e => process.stderr.write(`[${who}] pageerror: ${e.stack || e}\n`));
            report.websockets[who] = [];
            page.on('websocket', ws => report.websockets[who].push(ws.url()));
            pages[who] = page;

            return page;
        }

        // Wait until the page reaches the meeting (or says why not, from its own text).
        async function joined(who) {
            const page = pages[who];
            const phase = await until(`${who} joins the meeting`, async () => {
                const s = await snap(who);
                if (s && (s.phase === 'meeting' || s.phase === 'failed'
                    || (s.phase === 'prejoin' && s.prejoinError && s.joinEnabled))) {
                    return s;
                }

                return null;
            });
            if (phase.phase !== 'meeting') {
                throw new Check(`${who} did not join; the page says: ${phase.notice || phase.prejoinStatus}`);
            }
            await page.locator('#meeting').waitFor({ state: 'visible', timeout: left() });
        }

        // The account form, shown once /config.json says the vhost is not anonymous.
        async function login(page) {
            if (!o.login) {
                return;
            }
            const [ user, password ] = o.login.split(':');
            await page.locator('#user-input').waitFor({ state: 'visible', timeout: left() });
            await page.locator('#user-input').fill(user, { timeout: left() });
            await page.locator('#password-input').fill(password, { timeout: left() });
        }

        // 1. Alice: home page, types the room (in upper case), goes to pre-join, joins.
        const alice = await open('alice');
        await alice.goto(`${o.url}/${o.jwt ? `?jwt=${encodeURIComponent(o.jwt)}` : ''}`, { timeout: left() });
        await alice.locator('#home').waitFor({ state: 'visible', timeout: left() });
        step('alice: home page shown', { title: await alice.title() });
        await alice.locator('#room-input').pressSequentially(o.room.toUpperCase(), { timeout: left() });
        const typed = await alice.locator('#room-input').inputValue();
        await alice.locator('#go').click({ timeout: left() });
        await alice.waitForURL(u => new URL(u).pathname === `/${o.room}`, { timeout: left() });
        await alice.locator('#prejoin').waitFor({ state: 'visible', timeout: left() });
        step('alice: pre-join shown', { typed, url: alice.url() });
        if (o.expectHttps) {
            // The vhost refuses plain ws:// logins: the page moved itself to the HTTPS listener.
            await alice.waitForURL(u => new URL(u).protocol === 'https:', { timeout: left() });
            await alice.locator('#prejoin').waitFor({ state: 'visible', timeout: left() });
            step('alice: moved to HTTPS', { url: alice.url() });
        }
        await until('alice: camera preview playing', () => alice.evaluate(() => {
            const v = document.getElementById('preview');

            return v.srcObject && v.readyState >= 2 && v.videoWidth > 0;
        }));
        step('alice: camera preview playing');
        await alice.locator('#name-input').fill('Alice', { timeout: left() });
        await login(alice);
        await until('alice: join button enabled', () => alice.locator('#join').isEnabled());
        await alice.locator('#join').click({ timeout: left() });
        await joined('alice');
        step('alice: in the meeting', { myId: (await snap('alice')).myId, websockets: report.websockets.alice });
        if (o.jwt && !report.websockets.alice.some(u => new URL(u).searchParams.get('token') === o.jwt)) {
            throw new Check(`alice's WebSocket did not carry the token: ${report.websockets.alice}`);
        }

        // 2. Bob: opens /<room> directly, joins.
        const bob = await open('bob');
        await bob.goto(`${o.url}/${o.room}`, { timeout: left() });
        await bob.locator('#prejoin').waitFor({ state: 'visible', timeout: left() });
        await bob.locator('#name-input').fill('Bob', { timeout: left() });
        await login(bob);
        await until('bob: join button enabled', () => bob.locator('#join').isEnabled());
        await bob.locator('#join').click({ timeout: left() });
        await joined('bob');
        step('bob: in the meeting', { myId: (await snap('bob')).myId });

        // 3. Each shows the other's tile with the right name.
        const tileNamed = (who, name) => until(`${who} shows a tile named ${name}`, async () => {
            const s = await snap(who);

            return s.tiles.find(t => !t.local && t.name === name) || null;
        });
        const bobAtAlice = await tileNamed('alice', 'Bob');
        const aliceAtBob = await tileNamed('bob', 'Alice');
        step('tiles with names', { atAlice: (await snap('alice')).tiles, atBob: (await snap('bob')).tiles });

        // 3b. More people join by URL; everyone shows everyone else by name; they close their tabs.
        if (o.extra > 0) {
            const NAMES = [ 'Carol', 'Dave', 'Erin', 'Frank', 'Grace', 'Heidi' ];
            const extras = NAMES.slice(0, o.extra);
            for (const name of extras) {
                const who = name.toLowerCase();
                const page = await open(who);
                await page.goto(`${o.url}/${o.room}`, { timeout: left() });
                await page.locator('#prejoin').waitFor({ state: 'visible', timeout: left() });
                await page.locator('#name-input').fill(name, { timeout: left() });
                await login(page);
                await until(`${who}: join button enabled`, () => page.locator('#join').isEnabled());
                await page.locator('#join').click({ timeout: left() });
                await joined(who);
            }
            const everyone = [ 'Alice', 'Bob', ...extras ];
            for (const name of everyone) {
                for (const other of everyone.filter(x => x !== name)) {
                    await tileNamed(name.toLowerCase(), other);
                }
            }
            step(`${everyone.length} people see each other by name`, {
                atAlice: (await snap('alice')).tiles.map(t => t.name)
            });
            for (const name of extras) {
                await pages[name.toLowerCase()].close({ runBeforeUnload: true });
                delete pages[name.toLowerCase()];
            }
            await until('alice shows only bob again', async () =>
                (await snap('alice')).tiles.filter(t => !t.local).length === 1);
            step('the others closed their tabs; alice shows only bob');
        }

        // 4. Branding, when asked for.
        if (o.brandName) {
            for (const who of [ 'alice', 'bob' ]) {
                await until(`${who} shows the brand name ${o.brandName}`,
                    async () => (await pages[who].locator('#brand-name').textContent()) === o.brandName);
            }
            step('brand name shown', { brand: (await snap('alice')).brand });
        }
        if (o.welcome) {
            for (const who of [ 'alice', 'bob' ]) {
                await until(`${who} shows the welcome message`, async () =>
                    (await snap(who)).messages.some(m => m.kind === 'system' && m.text.includes(o.welcome)));
            }
            step('welcome message shown', { messages: (await snap('bob')).messages });
        }

        // 5. Chat: Alice types a message, Bob sees it from Alice (and Alice sees the room's echo).
        const text = `hello from alice ${Date.now()}`;
        await alice.locator('#chat-input').fill(text, { timeout: left() });
        await alice.locator('#chat-input').press('Enter', { timeout: left() });
        await until('bob shows alice\'s chat message', async () =>
            (await snap('bob')).messages.some(m => m.text === text && m.from === 'Alice'));
        await until('alice shows her own message', async () =>
            (await snap('alice')).messages.some(m => m.text === text && m.from === 'You'));
        step('chat message delivered', { text });

        // 6. Speaker stats and conference duration, when the vhost runs their plugins.
        const sa = await snap('alice');
        report.speakerStatsSource = sa.speakerStatsSource;
        if (await alice.locator('#stats-toggle').isVisible()) {
            await alice.locator('#stats-toggle').click({ timeout: left() });
            const rows = await until('speaker stats list the participants', async () => {
                const s = await snap('alice');

                return s.stats.length >= 2 ? s.stats : null;
            }, 10000);
            report.speakerStats = rows;
            step('speaker stats shown', { rows });
        }
        report.duration = await until('conference duration shown', async () => (await snap('alice')).duration, 5000)
            .catch(() => null);
        if (report.duration) {
            step('conference duration shown', { duration: report.duration });
        }

        // 7. Media: observed for --media-wait seconds; required only with --require-media.
        const mediaEnd = Date.now() + Math.min(o.mediaWait * 1000, left());
        // muteSeen: true (seen at Bob), or null (Bob had no audio track of Alice to show it on).
        const media = { aliceSeesBobVideo: false, bobSeesAliceVideo: false, muteSeen: null };
        while (Date.now() < mediaEnd && !(media.aliceSeesBobVideo && media.bobSeesAliceVideo)) {
            const [ a, b ] = [ await snap('alice'), await snap('bob') ];
            media.aliceSeesBobVideo = a.tiles.some(t => t.id === bobAtAlice.id && t.video === 'playing');
            media.bobSeesAliceVideo = b.tiles.some(t => t.id === aliceAtBob.id && t.video === 'playing');
            await sleep(500);
        }
        // Alice mutes her microphone: her own tile shows it at once. Bob's tile of Alice can
        // show it only once Bob has her audio track (the mute travels with the track's
        // signalling): then it is required; without that track it is reported as not checked.
        const hadTrack = await until('bob has alice\'s audio track, unmuted', async () => {
            const t = (await snap('bob')).tiles.find(x => x.id === aliceAtBob.id);

            return t && t.tracks.includes('audio') && !t.audioMuted;
        }, 5000).then(() => true, () => false);
        media.bobTileOfAliceBeforeMute = (await snap('bob')).tiles.find(t => t.id === aliceAtBob.id);
        await alice.locator('#mic').click({ timeout: left() });
        await until('alice\'s own tile shows her microphone muted', async () =>
            (await snap('alice')).tiles.some(t => t.local && t.audioMuted));
        step('alice muted her microphone', { button: await alice.locator('#mic').textContent() });
        if (hadTrack) {
            await until('bob sees alice\'s microphone muted', async () =>
                (await snap('bob')).tiles.some(t => t.id === aliceAtBob.id && t.audioMuted));
            media.muteSeen = true;
        } else {
            media.muteSeen = null;
        }
        report.media = media;
        step('media observed', media);
        if (o.requireMedia && !(media.aliceSeesBobVideo && media.bobSeesAliceVideo)) {
            throw new Check('remote video is not playing on both sides');
        }

        // 8. Bob leaves: his page says so, Alice's tile of Bob goes away.
        await bob.locator('#leave').click({ timeout: left() });
        await bob.locator('#left').waitFor({ state: 'visible', timeout: left() });
        await until('alice no longer shows bob\'s tile', async () =>
            !(await snap('alice')).tiles.some(t => t.id === bobAtAlice.id));
        step('bob left; his tile is gone at alice', { atAlice: (await snap('alice')).tiles });

        // 9. Bob joins again from his page's link, then closes the tab: the tile comes back,
        // then goes away without any button.
        await bob.locator('#rejoin').click({ timeout: left() });
        await bob.locator('#prejoin').waitFor({ state: 'visible', timeout: left() });
        await bob.locator('#name-input').fill('Bob', { timeout: left() });
        await login(bob);
        await until('bob: join button enabled again', () => bob.locator('#join').isEnabled());
        await bob.locator('#join').click({ timeout: left() });
        await joined('bob');
        await tileNamed('alice', 'Bob');
        step('bob joined again');
        await bob.close({ runBeforeUnload: true });
        delete pages.bob;
        await until('alice no longer shows bob\'s tile after he closed the tab', async () =>
            !(await snap('alice')).tiles.some(t => !t.local));
        step('bob closed the tab; his tile is gone at alice');
        report.ok = true;
    } catch (e) {
        report.failure = e instanceof Check ? e.message : String(e.stack || e);
    }
    for (const who of Object.keys(pages)) {
        report.pages[who] = await snap(who);
    }
    await browser.close().catch(() => {});
    process.stdout.write(`${JSON.stringify(report)}\n`, () => process.exit(report.ok ? 0 : 1));
}

main().catch(e => {
    process.stderr.write(`meeting-page.mjs: ${e.stack || e}\n`);
    process.stdout.write(`${JSON.stringify({ ok: false, failure: String(e.stack || e) })}\n`, () => process.exit(1));
});
