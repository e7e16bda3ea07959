// The meeting page: `/` picks a room, `/<room>` shows the pre-join screen (name, camera and
// microphone preview) and then the meeting, all on lib-jitsi-meet (JitsiMeetJS, loaded before
// this file) against the Lilt that served the page: XMPP over WebSocket at the same origin,
// the vhost, MUC service and focus named by /config.json (meeting_page.rs). No signalling of
// its own: joining, media, mutes, chat, speaker stats and the conference duration are
// lib-jitsi-meet's. The vhost's branding (name, logo, colours) comes from the branding
// plugin's `urn:lilt:branding` query, its welcome message as a chat message from the room.
//
// Every failure is shown as text (the #notice banner, or the status line of the pre-join
// screen). `window.liltPage.snapshot()` returns what the page shows, for tests
// (tests/browser/meeting-page.mjs) and for debugging from the console.
'use strict';

(function () {
    const ROOM_RE = /^[a-z0-9][a-z0-9_-]{0,63}$/;
    const BRANDING_NS = 'urn:lilt:branding';
    const COLOR_RE = /^#[0-9a-fA-F]{6}$/;
    const $ = id => document.getElementById(id);
    const params = new URLSearchParams(location.search);
    const jwt = params.get('jwt') || null;

    const state = {
        phase: 'loading', // loading | home | prejoin | joining | meeting | left | failed
        config: null,
        room: null,
        name: '',
        connection: null,
        conference: null,
        credentials: null,
        localTracks: [],
        myId: null,
        participants: new Map(), // id → { name, tile, audioMuted, videoMuted }
        dominant: null,
        createdTimestamp: null,
        brand: null,
        brandError: null,
        welcome: [],
        notices: [],
        leaving: false
    };

    // ---- small helpers ----

    function el(tag, attrs, ...children) {
        const e = document.createElement(tag);
        for (const [ k, v ] of Object.entries(attrs || {})) {
            if (k === 'class') {
                e.className = v;
            } else if (k.startsWith('data-')) {
                e.setAttribute(k, v);
            } else {
                e[k] = v;
            }
        }
        for (const c of children) {
            e.append(c);
        }

        return e;
    }

    function setPhase(phase) {
        state.phase = phase;
        document.body.dataset.phase = phase;
        const shown = { joining: 'prejoin', failed: 'left' }[phase] || phase;
        for (const id of [ 'home', 'prejoin', 'meeting', 'left' ]) {
            $(id).hidden = id !== shown;
        }
    }

    // A message for the user in the banner (kind: error | info); '' hides it.
    function notice(text, kind = 'error') {
        const n = $('notice');
        n.textContent = text;
        n.className = kind;
        n.hidden = !text;
        if (text) {
            state.notices.push({ t: Date.now(), kind, text });
            (kind === 'error' ? console.error : console.info)(`lilt page: ${text}`);
        }
    }

    function prejoinStatus(text, error = false) {
        const s = $('prejoin-status');
        s.textContent = text;
        s.classList.toggle('error', error);
    }

    function describe(e) {
        if (!e) {
            return 'unknown error';
        }
        if (typeof e === 'string') {
            return e;
        }

        return e.message || e.name || String(e);
    }

    const fmtDuration = ms => {
        const s = Math.max(0, Math.floor(ms / 1000));
        const h = Math.floor(s / 3600);
        const mm = String(Math.floor(s / 60) % 60).padStart(2, '0');
        const ss = String(s % 60).padStart(2, '0');

        return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
    };

    // ---- routing ----

    function roomFromPath() {
        const seg = location.pathname.replace(/^\/+|\/+$/g, '');
        if (!seg) {
            return null;
        }
        let name;
        try {
            name = decodeURIComponent(seg);
        } catch (e) {
            name = seg;
        }

        return name;
    }

    function roomUrl(room) {
        return `/${encodeURIComponent(room)}${jwt ? `?jwt=${encodeURIComponent(jwt)}` : ''}`;
    }

    function recentRooms() {
        try {
            const r = JSON.parse(localStorage.getItem('lilt.recentRooms') || '[]');

            return Array.isArray(r) ? r.filter(x => typeof x === 'string' && ROOM_RE.test(x)) : [];
        } catch (e) {
            return [];
        }
    }

    function rememberRoom(room) {
        try {
            const r = [ room, ...recentRooms().filter(x => x !== room) ].slice(0, 8);
            localStorage.setItem('lilt.recentRooms', JSON.stringify(r));
        } catch (e) {
            // Private mode: nothing remembered.
        }
    }

    function suggestRoom() {
        const a = [ 'bright', 'quiet', 'swift', 'amber', 'brave', 'calm', 'lucky', 'merry' ];
        const b = [ 'river', 'harbor', 'meadow', 'summit', 'garden', 'comet', 'forest', 'lantern' ];
        const pick = xs => xs[Math.floor(Math.random() * xs.length)];

        return `${pick(a)}-${pick(b)}-${Math.floor(Math.random() * 90) + 10}`;
    }

    function showHome(error) {
        setPhase('home');
        const input = $('room-input');
        input.placeholder = suggestRoom();
        if (error) {
            notice(error);
        }
        const recent = recentRooms();
        $('recent').hidden = recent.length === 0;
        $('recent-list').replaceChildren(...recent.map(r => el('li', {}, el('a', { href: roomUrl(r) }, r))));
        $('room-form').addEventListener('submit', ev => {
            ev.preventDefault();
            const room = (input.value.trim() || input.placeholder).toLowerCase();
            if (!ROOM_RE.test(room)) {
                notice('Room names use lowercase letters, digits, - and _ (at most 64), and start with a letter or digit.');

                return;
            }
            location.assign(roomUrl(room));
        });
        input.addEventListener('input', () => {
            const lower = input.value.toLowerCase();
            if (lower !== input.value) {
                input.value = lower;
            }
        });
    }

    // ---- server config and branding ----

    async function loadConfig() {
        let res;
        try {
            res = await fetch('/config.json', { cache: 'no-store' });
        } catch (e) {
            throw new Error(`cannot reach the server for /config.json: ${describe(e)}`);
        }
        if (!res.ok) {
            throw new Error(`/config.json answered HTTP ${res.status}`);
        }
        const c = await res.json();
        if (c.error || !c.domain) {
            throw new Error(`the server has no meeting configuration: ${c.error || 'no domain'}`);
        }

        return c;
    }

    // Ask the vhost's branding plugin (`<iq type='get' to=VHOST><query xmlns='urn:lilt:branding'/>`).
    function queryBrand() {
        const xmpp = state.connection && state.connection.xmpp;
        const conn = xmpp && xmpp.connection;
        if (!conn || typeof conn.sendIQ !== 'function') {
            state.brandError = 'this lib-jitsi-meet build exposes no way to send the query';

            return;
        }
        const doc = new DOMParser().parseFromString(
            `<iq xmlns="jabber:client" type="get"><query xmlns="${BRANDING_NS}"/></iq>`, 'text/xml');
        const iq = doc.documentElement;
        iq.setAttribute('to', state.config.domain);
        conn.sendIQ(iq, result => {
            const brand = result.getElementsByTagNameNS(BRANDING_NS, 'brand')[0];
            try {
                applyBrand(JSON.parse(brand ? brand.textContent : 'null'));
            } catch (e) {
                state.brandError = `unreadable brand: ${describe(e)}`;
            }
        }, error => {
            // No branding plugin on this vhost (or it failed): the default look stays.
            const cond = error && error.querySelector ? error.querySelector('error > *') : null;
            state.brandError = cond ? cond.localName : describe(error);
        }, 10000);
    }

    function applyBrand(brand) {
        if (!brand || typeof brand !== 'object') {
            state.brandError = 'empty brand';

            return;
        }
        state.brand = brand;
        if (typeof brand.name === 'string' && brand.name) {
            $('brand-name').textContent = brand.name;
            document.title = state.room ? `${state.room} · ${brand.name}` : brand.name;
        }
        if (typeof brand.logo_url === 'string' && brand.logo_url) {
            let url = null;
            try {
                url = new URL(brand.logo_url, location.href);
            } catch (e) {
                url = null;
            }
            if (url && (url.protocol === 'https:' || url.protocol === 'http:')) {
                $('brand-logo').src = url.href;
            }
        }
        const colors = brand.colors && typeof brand.colors === 'object' ? brand.colors : {};
        for (const [ k, v ] of Object.entries(colors)) {
            if (/^[a-z][a-z0-9-]*$/.test(k) && COLOR_RE.test(v)) {
                document.documentElement.style.setProperty(`--color-${k}`, v);
            }
        }
    }

    // ---- pre-join ----

    async function createTracks(devices) {
        if (devices.length === 0) {
            return [];
        }
        try {
            return await JitsiMeetJS.createLocalTracks({ devices, resolution: 360 });
        } catch (e) {
            if (devices.length === 1) {
                throw e;
            }
            // One device may work without the other.
            const got = [];
            const errors = [];
            for (const d of devices) {
                try {
                    got.push(...await JitsiMeetJS.createLocalTracks({ devices: [ d ], resolution: 360 }));
                } catch (e2) {
                    errors.push(`${d === 'audio' ? 'microphone' : 'camera'}: ${describe(e2)}`);
                }
            }
            if (got.length === 0) {
                throw new Error(errors.join('; '));
            }
            prejoinStatus(`Not available: ${errors.join('; ')}`, true);

            return got;
        }
    }

    const localTrack = type => state.localTracks.find(t => t.getType() === type) || null;

    function showPreview() {
        const video = localTrack('video');
        const box = $('preview-box');
        if (video && !video.isMuted()) {
            video.attach($('preview'));
            box.classList.remove('off');
        } else {
            box.classList.add('off');
        }
    }

    async function showPrejoin(room) {
        setPhase('prejoin');
        state.room = room;
        rememberRoom(room);
        $('prejoin-room').textContent = room;
        $('room-title').textContent = room;
        document.title = `${room} · Lilt Meet`;
        const nameInput = $('name-input');
        try {
            nameInput.value = localStorage.getItem('lilt.displayName') || '';
        } catch (e) {
            nameInput.value = '';
        }
        nameInput.focus();

        prejoinStatus('Starting camera and microphone…');
        const configP = state.configP;
        try {
            state.localTracks = await createTracks([ 'audio', 'video' ]);
            if (!$('prejoin-status').classList.contains('error')) {
                prejoinStatus('');
            }
        } catch (e) {
            state.localTracks = [];
            prejoinStatus(`No camera or microphone (${describe(e)}). You can still join to watch and chat.`, true);
        }
        $('pre-mic').disabled = !localTrack('audio');
        $('pre-cam').disabled = !localTrack('video');
        $('pre-mic').checked = Boolean(localTrack('audio'));
        $('pre-cam').checked = Boolean(localTrack('video'));
        showPreview();
        $('pre-cam').addEventListener('change', async () => {
            const t = localTrack('video');
            if (t) {
                await ($('pre-cam').checked ? t.unmute() : t.mute());
                showPreview();
            }
        });
        $('pre-mic').addEventListener('change', async () => {
            const t = localTrack('audio');
            if (t) {
                await ($('pre-mic').checked ? t.unmute() : t.mute());
            }
        });

        try {
            state.config = await configP;
        } catch (e) {
            prejoinStatus(`Cannot join: ${describe(e)}`, true);

            return;
        }
        // A vhost with accounts (not auth-anonymous) and no ?jwt=: ask for them.
        const needsLogin = !state.config.anonymous && !jwt;
        $('login').hidden = !needsLogin;
        $('join').disabled = false;
        $('join-form').addEventListener('submit', ev => {
            ev.preventDefault();
            const name = nameInput.value.trim();
            if (!name) {
                prejoinStatus('Please enter your name.', true);
                nameInput.focus();

                return;
            }
            state.name = name;
            state.credentials = null;
            if (needsLogin) {
                const user = $('user-input').value.trim();
                const password = $('password-input').value;
                if (!user || !password) {
                    prejoinStatus('This server wants your user name and password.', true);

                    return;
                }
                state.credentials = { id: user.includes('@') ? user : `${user}@${state.config.domain}`, password };
            }
            try {
                localStorage.setItem('lilt.displayName', name);
            } catch (e) {
                // Not remembered.
            }
            $('join').disabled = true;
            join();
        });
    }

    // ---- joining ----

    const CONNECTION_ERRORS = {
        'connection.passwordRequired': 'The server refused the login: check the user and password, or open the link with ?jwt=<token>.',
        'connection.connectionDropped': 'The connection to the server dropped.',
        'connection.otherError': 'The server could not be reached over WebSocket.',
        'connection.serverError': 'The server reported an error.'
    };
    const CONFERENCE_ERRORS = {
        'conference.connectionError.membersOnly': 'This room is members-only.',
        'conference.passwordRequired': 'This room is locked with a password.',
        'conference.authenticationRequired': 'Only signed-in users may start this room; wait for one, or sign in.',
        'conference.focusDisconnected': 'The conference focus is not answering.',
        'conference.focusLeft': 'The conference focus left the room.',
        'conference.conferenceDestroyed': 'The meeting was ended.',
        'conference.videobridgeNotAvailable': 'No media server (videobridge) is available.',
        'conference.iceFailed': 'Media could not connect (ICE failed).',
        'conference.reservationError': 'The room could not be reserved.',
        'conference.setupFailed': 'Setting up the meeting failed.',
        'conference.displayNameRequired': 'A display name is required in this room.',
        'conference.maxUsersLimitReached': 'The room is full.',
        'conference.connectionError.accessDenied': 'You may not join this room.',
        'conference.connectionError.notAllowed': 'This room name is not allowed here.',
        'conference.gracefulShutdown': 'The server is shutting down.',
        'conference.incompatible_server_version': 'The server is incompatible with this page.'
    };

    function join() {
        const { events: E } = JitsiMeetJS;
        const c = state.config;
        setPhase('joining');
        prejoinStatus('Connecting…');
        const ws = `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}${c.websocket || '/xmpp-websocket'}`;
        const connection = new JitsiMeetJS.JitsiConnection(null, jwt, {
            serviceUrl: `${ws}?room=${encodeURIComponent(state.room)}`,
            hosts: {
                domain: c.domain,
                muc: c.muc || `conference.${c.domain}`,
                focus: c.focus || `focus.${c.domain}`
            },
            websocketKeepAliveUrl: `${location.origin}${c.websocket || '/xmpp-websocket'}`
        });
        state.connection = connection;
        connection.addEventListener(E.connection.CONNECTION_ESTABLISHED, () => {
            prejoinStatus('Joining the room…');
            queryBrand();
            try {
                joinConference();
            } catch (e) {
                failed(`Could not join the room: ${describe(e)}`);
            }
        });
        connection.addEventListener(E.connection.CONNECTION_FAILED, (err, msg) => {
            failed(`Connection failed: ${CONNECTION_ERRORS[err] || err}${msg ? ` (${msg})` : ''}`);
        });
        connection.addEventListener(E.connection.CONNECTION_DISCONNECTED, msg => {
            if (!state.leaving && state.phase !== 'failed') {
                failed(`Disconnected from the server${msg ? `: ${msg}` : ''}.`);
            }
        });
        connection.connect(state.credentials || {});
    }

    // A fatal problem: say it, keep what can be shown, offer to join again.
    function failed(text) {
        notice(text);
        if (state.phase === 'prejoin' || state.phase === 'joining') {
            prejoinStatus(text, true);
            setPhase('prejoin');
            $('join').disabled = false;

            return;
        }
        $('left-title').textContent = 'The meeting ended for you';
        $('left-detail').textContent = text;
        $('rejoin').href = roomUrl(state.room);
        teardown();
        setPhase('failed');
    }

    function joinConference() {
        const { events: E } = JitsiMeetJS;
        const C = E.conference;
        const conference = state.connection.initJitsiConference(state.room, {
            p2p: { enabled: false },
            openBridgeChannel: 'websocket'
        });
        state.conference = conference;
        conference.on(C.CONFERENCE_JOINED, () => {
            state.myId = conference.myUserId();
            notice('');
            setPhase('meeting');
            addTile(state.myId, state.name, true);
            for (const t of state.localTracks) {
                attachTrack(state.myId, t);
            }
            updateLocalButtons();
            setupStats();
        });
        conference.on(C.CONFERENCE_FAILED, (err, ...rest) => {
            const detail = rest.filter(x => typeof x === 'string' && x).join(' ');
            failed(`Could not join the room: ${CONFERENCE_ERRORS[err] || err}${detail ? ` (${detail})` : ''}`);
        });
        conference.on(C.CONFERENCE_ERROR, err => {
            notice(`Conference error: ${CONFERENCE_ERRORS[err] || err}`);
        });
        conference.on(C.KICKED, () => failed('You were removed from the meeting.'));
        conference.on(C.USER_JOINED, (id, user) => {
            if (user && user.isHidden && user.isHidden()) {
                return;
            }
            addTile(id, user && user.getDisplayName ? user.getDisplayName() : '', false);
        });
        conference.on(C.USER_LEFT, id => removeTile(id));
        conference.on(C.DISPLAY_NAME_CHANGED, (id, name) => setTileName(id, name));
        conference.on(C.TRACK_ADDED, track => {
            if (!track.isLocal()) {
                attachTrack(track.getParticipantId(), track);
            }
        });
        conference.on(C.TRACK_REMOVED, track => {
            if (!track.isLocal()) {
                detachTrack(track.getParticipantId(), track);
            }
        });
        conference.on(C.TRACK_MUTE_CHANGED, track => {
            const id = track.isLocal() ? state.myId : track.getParticipantId();
            setMuteState(id, track.getType(), track.isMuted());
            if (track.isLocal()) {
                updateLocalButtons();
            }
        });
        conference.on(C.DOMINANT_SPEAKER_CHANGED, id => setDominant(id));
        conference.on(C.MESSAGE_RECEIVED, (id, text, ts) => addMessage(id, text, ts));
        if (C.CONFERENCE_CREATED_TIMESTAMP) {
            conference.on(C.CONFERENCE_CREATED_TIMESTAMP, ts => {
                state.createdTimestamp = Number(ts);
                $('duration').hidden = false;
                tickDuration();
            });
        }
        if (C.CONNECTION_INTERRUPTED) {
            conference.on(C.CONNECTION_INTERRUPTED, () => notice('Media connection interrupted; reconnecting…'));
        }
        if (C.CONNECTION_RESTORED) {
            conference.on(C.CONNECTION_RESTORED, () => notice(''));
        }
        conference.setDisplayName(state.name);
        for (const t of state.localTracks) {
            conference.addTrack(t).catch(e => notice(`Could not send your ${t.getType()}: ${describe(e)}`));
        }
        conference.join();
    }

    // ---- tiles ----

    function addTile(id, name, local) {
        let p = state.participants.get(id);
        if (!p) {
            const video = el('video', { autoplay: true, playsInline: true, muted: true });
            const audio = local ? null : el('audio', { autoplay: true });
            const tile = el('div', { class: `tile${local ? ' local' : ''}`, 'data-id': id, 'data-video': 'none' },
                video,
                el('div', { class: 'avatar' }),
                el('div', { class: 'label' },
                    el('span', { class: 'name' }),
                    el('span', { class: 'badge mic', title: 'Microphone muted' }, 'mic off'),
                    el('span', { class: 'badge cam', title: 'Camera off' }, 'cam off')));
            if (audio) {
                tile.append(audio);
            }
            for (const ev of [ 'playing', 'pause', 'emptied', 'resize', 'loadeddata' ]) {
                video.addEventListener(ev, () => updateVideoState(id));
            }
            p = { name: '', tile, video, audio, local, audioMuted: true, videoMuted: true, tracks: new Set() };
            tile.classList.add('audio-muted', 'video-muted');
            state.participants.set(id, p);
            if (local) {
                $('tiles').prepend(tile);
            } else {
                $('tiles').append(tile);
            }
        }
        setTileName(id, name);
        if (state.dominant === id) {
            p.tile.classList.add('dominant');
        }

        return p;
    }

    function setTileName(id, name) {
        const p = state.participants.get(id);
        if (!p) {
            return;
        }
        p.name = name || '';
        const shown = p.name || 'Guest';
        p.tile.querySelector('.name').textContent = p.local ? `${shown} (you)` : shown;
        p.tile.querySelector('.avatar').textContent = shown.trim().charAt(0).toUpperCase() || '?';
    }

    function removeTile(id) {
        const p = state.participants.get(id);
        if (p) {
            p.tile.remove();
            state.participants.delete(id);
        }
    }

    function attachTrack(id, track) {
        const p = state.participants.get(id) || addTile(id, '', id === state.myId);
        p.tracks.add(track);
        if (track.getType() === 'video') {
            track.attach(p.video);
        } else if (p.audio) {
            track.attach(p.audio);
        }
        setMuteState(id, track.getType(), track.isMuted());
    }

    function detachTrack(id, track) {
        const p = state.participants.get(id);
        if (!p) {
            return;
        }
        p.tracks.delete(track);
        try {
            track.detach(track.getType() === 'video' ? p.video : p.audio);
        } catch (e) {
            // Already detached.
        }
        if (![ ...p.tracks ].some(t => t.getType() === track.getType())) {
            setMuteState(id, track.getType(), true);
        }
    }

    function setMuteState(id, type, muted) {
        const p = state.participants.get(id);
        if (!p) {
            return;
        }
        if (type === 'audio') {
            p.audioMuted = muted;
        } else {
            p.videoMuted = muted;
        }
        p.tile.classList.toggle(`${type}-muted`, muted);
        updateVideoState(id);
    }

    function updateVideoState(id) {
        const p = state.participants.get(id);
        if (!p) {
            return;
        }
        const v = p.video;
        const playing = !p.videoMuted && v.srcObject && !v.paused && v.readyState >= 2 && v.videoWidth > 0;
        p.tile.dataset.video = playing ? 'playing' : (p.videoMuted ? 'muted' : 'none');
    }

    function setDominant(id) {
        state.dominant = id;
        for (const [ pid, p ] of state.participants) {
            p.tile.classList.toggle('dominant', pid === id);
        }
    }

    // ---- controls ----

    function updateLocalButtons() {
        const a = localTrack('audio');
        const v = localTrack('video');
        const mic = $('mic');
        const cam = $('cam');
        mic.disabled = !a;
        cam.disabled = !v;
        mic.textContent = !a ? 'No microphone' : a.isMuted() ? 'Unmute' : 'Mute';
        cam.textContent = !v ? 'No camera' : v.isMuted() ? 'Camera on' : 'Camera off';
        mic.classList.toggle('off', Boolean(a && a.isMuted()));
        cam.classList.toggle('off', Boolean(v && v.isMuted()));
        mic.setAttribute('aria-pressed', String(Boolean(a && a.isMuted())));
        cam.setAttribute('aria-pressed', String(Boolean(v && v.isMuted())));
        if (state.myId) {
            setMuteState(state.myId, 'audio', !a || a.isMuted());
            setMuteState(state.myId, 'video', !v || v.isMuted());
        }
    }

    async function toggle(type) {
        const t = localTrack(type);
        if (!t) {
            return;
        }
        try {
            await (t.isMuted() ? t.unmute() : t.mute());
        } catch (e) {
            notice(`Could not ${t.isMuted() ? 'unmute' : 'mute'} your ${type === 'audio' ? 'microphone' : 'camera'}: ${describe(e)}`);
        }
        updateLocalButtons();
    }

    function teardown() {
        state.leaving = true;
        const conference = state.conference;
        const connection = state.connection;
        state.conference = null;
        state.connection = null;
        const done = conference ? conference.leave().catch(() => undefined) : Promise.resolve();

        return done.then(() => {
            for (const t of state.localTracks) {
                t.dispose().catch(() => undefined);
            }
            state.localTracks = [];
            if (connection) {
                connection.disconnect();
            }
        });
    }

    async function leave() {
        $('leave').disabled = true;
        await teardown();
        for (const id of [ ...state.participants.keys() ]) {
            removeTile(id);
        }
        $('left-title').textContent = 'You left the meeting';
        $('left-detail').textContent = '';
        $('rejoin').href = roomUrl(state.room);
        $('duration').hidden = true;
        setPhase('left');
    }

    // ---- chat ----

    let unread = 0;

    function addMessage(id, text, ts) {
        const local = id && id === state.myId;
        const p = id ? state.participants.get(id) : null;
        const from = !id ? (state.room || 'room') : local ? 'You' : (p && p.name) || 'Guest';
        const time = ts ? new Date(ts) : new Date();
        const li = el('li', { class: !id ? 'system' : local ? 'local' : 'remote', 'data-from': id || '' },
            el('span', { class: 'from' }, from),
            el('span', { class: 'text' }, text));
        li.title = time.toLocaleTimeString();
        if (!id) {
            state.welcome.push(text);
        }
        const list = $('messages');
        list.append(li);
        list.scrollTop = list.scrollHeight;
        if ($('chat').hidden && !local) {
            unread++;
            $('unread').textContent = String(unread);
            $('unread').hidden = false;
        }
    }

    function sendMessage(ev) {
        ev.preventDefault();
        const input = $('chat-input');
        const text = input.value.trim();
        if (!text || !state.conference) {
            return;
        }
        try {
            // The room echoes it back; it is shown then (MESSAGE_RECEIVED).
            state.conference.sendTextMessage(text);
            input.value = '';
        } catch (e) {
            notice(`Could not send the message: ${describe(e)}`);
        }
    }

    // ---- speaker stats and duration ----

    function speakerStatsSource() {
        const xmpp = state.connection && state.connection.xmpp;
        const discovered = xmpp && xmpp.speakerStatsComponentAddress;

        return discovered || (state.config && state.config.speakerstats) || null;
    }

    function setupStats() {
        const source = speakerStatsSource();
        const btn = $('stats-toggle');
        btn.hidden = !source || typeof state.conference.getSpeakerStats !== 'function';
        $('stats-source').textContent = source
            ? `Totals kept by ${source} for everyone who spoke in this meeting, live from the dominant-speaker events.`
            : '';
    }

    function renderStats() {
        if ($('stats').hidden || !state.conference) {
            return;
        }
        let stats = {};
        try {
            stats = state.conference.getSpeakerStats() || {};
        } catch (e) {
            $('stats-source').textContent = `Speaker stats are unavailable: ${describe(e)}`;

            return;
        }
        const rows = Object.entries(stats).map(([ id, s ]) => ({
            id,
            name: (s.isLocalStats && s.isLocalStats() ? `${state.name} (you)` : s.getDisplayName && s.getDisplayName())
                || (state.participants.get(id) || {}).name || 'Guest',
            ms: s.getTotalDominantSpeakerTime ? s.getTotalDominantSpeakerTime() : 0,
            dominant: s.isDominantSpeaker ? s.isDominantSpeaker() : false,
            left: s.hasLeft ? s.hasLeft() : false
        })).sort((x, y) => y.ms - x.ms);
        $('stats-body').replaceChildren(...rows.map(r => {
            const tr = el('tr', { 'data-id': r.id },
                el('td', {}, r.left ? `${r.name} (left)` : r.name),
                el('td', {}, fmtDuration(r.ms)));
            tr.classList.toggle('dominant', r.dominant);

            return tr;
        }));
    }

    function tickDuration() {
        if (state.createdTimestamp && state.phase === 'meeting') {
            $('duration').textContent = fmtDuration(Date.now() - state.createdTimestamp);
        }
    }

    // ---- test and debug view ----

    function snapshot() {
        return {
            phase: state.phase,
            room: state.room,
            myId: state.myId,
            config: state.config,
            brand: state.brand,
            brandError: state.brandError,
            brandName: $('brand-name').textContent,
            notice: $('notice').hidden ? null : $('notice').textContent,
            notices: state.notices,
            prejoinStatus: $('prejoin-status').textContent,
            prejoinError: $('prejoin-status').classList.contains('error'),
            joinEnabled: !$('join').disabled,
            localTracks: state.localTracks.map(t => ({ type: t.getType(), muted: t.isMuted() })),
            tiles: [ ...document.querySelectorAll('#tiles .tile') ].map(t => ({
                id: t.dataset.id,
                tracks: [ ...((state.participants.get(t.dataset.id) || {}).tracks || []) ].map(x => x.getType()).sort(),
                name: t.querySelector('.name').textContent,
                local: t.classList.contains('local'),
                audioMuted: t.classList.contains('audio-muted'),
                videoMuted: t.classList.contains('video-muted'),
                dominant: t.classList.contains('dominant'),
                video: t.dataset.video
            })),
            messages: [ ...document.querySelectorAll('#messages li') ].map(li => ({
                from: li.querySelector('.from').textContent,
                fromId: li.dataset.from || null,
                text: li.querySelector('.text').textContent,
                kind: li.className
            })),
            createdTimestamp: state.createdTimestamp,
            duration: $('duration').hidden ? null : $('duration').textContent,
            speakerStatsSource: speakerStatsSource(),
            stats: [ ...document.querySelectorAll('#stats-body tr') ].map(tr => tr.textContent)
        };
    }

    window.liltPage = { snapshot };

    // ---- start ----

    function start() {
        if (typeof JitsiMeetJS !== 'object') {
            setPhase('failed');
            $('left-title').textContent = 'The meeting library did not load';
            $('left-detail').textContent = 'lib-jitsi-meet is missing from this build of the page (scripts/web.sh builds it).';
            notice('lib-jitsi-meet did not load.');

            return;
        }
        JitsiMeetJS.init({});
        JitsiMeetJS.setLogLevel(JitsiMeetJS.logLevels.WARN);

        $('mic').addEventListener('click', () => toggle('audio'));
        $('cam').addEventListener('click', () => toggle('video'));
        $('leave').addEventListener('click', leave);
        $('chat-form').addEventListener('submit', sendMessage);
        $('chat-toggle').addEventListener('click', () => {
            $('chat').hidden = !$('chat').hidden;
            if (!$('chat').hidden) {
                unread = 0;
                $('unread').hidden = true;
            }
        });
        $('stats-toggle').addEventListener('click', () => {
            $('stats').hidden = !$('stats').hidden;
            renderStats();
        });
        setInterval(() => {
            tickDuration();
            renderStats();
            for (const id of state.participants.keys()) {
                updateVideoState(id);
            }
        }, 1000);
        // Closing the tab or navigating away: leave at once, synchronously (the page may not
        // live for a reply). lib-jitsi-meet sends the unavailable presence and closes the
        // stream when given the unload event.
        const unload = ev => {
            const connection = state.connection;
            if (!connection) {
                return;
            }
            state.leaving = true;
            state.conference = null;
            state.connection = null;
            try {
                connection.disconnect(ev);
            } catch (e) {
                // Nothing more can be done while unloading.
            }
        };
        window.addEventListener('beforeunload', unload);
        window.addEventListener('pagehide', unload);

        // The vhost may refuse logins over plain ws:// (no `allow_unencrypted`): then the page
        // moves to the HTTPS listener, same host and path, before anyone types anything.
        state.configP = loadConfig();
        state.configP.then(c => {
            if (c.encrypted || c.allow_unencrypted) {
                return;
            }
            if (c.https_port && location.protocol === 'http:') {
                notice('This server wants an encrypted connection; moving to HTTPS…', 'info');
                location.replace(`https://${location.hostname}:${c.https_port}${location.pathname}${location.search}`);
            } else {
                notice('This server accepts logins over HTTPS only, and this page was not loaded over HTTPS.');
            }
        }, () => undefined);

        const raw = roomFromPath();
        if (raw === null) {
            showHome();

            return;
        }
        const room = raw.trim().toLowerCase();
        if (!ROOM_RE.test(room)) {
            history.replaceState(null, '', '/');
            showHome(`"${raw}" is not a room name: use lowercase letters, digits, - and _ (at most 64).`);

            return;
        }
        if (room !== raw) {
            history.replaceState(null, '', roomUrl(room));
        }
        showPrejoin(room);
    }

    start();
})();
