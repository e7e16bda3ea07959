// The test page's script: one meeting participant driven by meet.mjs through `window.lilt`.
// It runs after jQuery and the lib-jitsi-meet bundle (index.html), in a page whose init script
// (meet.mjs, INIT_SCRIPT) already records every RTCPeerConnection in `window.__liltPCs` and the
// focus and Jingle frames of the XMPP WebSocket in `window.__liltXmpp`.
//
// Everything seen is recorded in `state` and read back with `lilt.snapshot()`; nothing here
// waits on the server: meet.mjs polls, with its own deadlines.
'use strict';

(function () {
    const MAX_EVENTS = 400;
    const state = {
        connection: 'none', // none | connecting | established | failed | disconnected
        connectionError: null,
        conference: 'none', // none | joining | joined | failed | left
        conferenceError: null,
        myId: null,
        localTracks: [],
        remote: {}, // participant id → { name, joined, left }
        tracks: [], // remote tracks: { participant, type, muted, ssrc, trackId, removed }
        mutes: [], // TRACK_MUTE_CHANGED: { participant, type, muted, local, t }
        events: [],
        errors: []
    };
    let connection = null;
    let conference = null;
    let t0 = Date.now();

    function ev(name, detail) {
        if (state.events.length < MAX_EVENTS) {
            state.events.push({ ...(detail || {}), t: Date.now() - t0, event: name });
        }
    }

    function err(where, e) {
        const text = e && (e.stack || e.message) ? `${e.message || e}` : JSON.stringify(e);
        state.errors.push({ t: Date.now() - t0, where, error: String(text).slice(0, 1000) });
        console.error(`lilt page: ${where}: ${text}`);
    }

    function describeTrack(track) {
        const ms = track.getTrack && track.getTrack();
        let ssrc = null;
        try {
            ssrc = track.getSSRC ? track.getSSRC() : null;
        } catch (e) {
            ssrc = null;
        }
        return {
            participant: track.getParticipantId ? track.getParticipantId() : null,
            type: track.getType(),
            muted: track.isMuted(),
            ssrc: ssrc === undefined ? null : ssrc,
            trackId: ms ? ms.id : null
        };
    }

    function remoteEntry(id) {
        if (!state.remote[id]) {
            state.remote[id] = { name: null, joined: false, left: false };
        }
        return state.remote[id];
    }

    // Start connecting and joining; returns at once (errors land in state).
    function start(o) {
        t0 = Date.now();
        const { events: E, logLevels } = JitsiMeetJS;
        JitsiMeetJS.init(o.init || {});
        JitsiMeetJS.setLogLevel(logLevels[(o.logLevel || 'info').toUpperCase()] || logLevels.INFO);

        connection = new JitsiMeetJS.JitsiConnection(null, o.token || null, {
            serviceUrl: o.serviceUrl,
            hosts: {
                domain: o.domain,
                muc: `conference.${o.domain}`,
                focus: `focus.${o.domain}`
            },
            ...(o.connection || {})
        });
        connection.addEventListener(E.connection.CONNECTION_ESTABLISHED, () => {
            state.connection = 'established';
            ev('CONNECTION_ESTABLISHED', { jid: connection.getJid ? connection.getJid() : null });
            joinConference(o).catch(e => {
                state.conference = 'failed';
                state.conferenceError = String(e && e.message || e);
                err('join', e);
            });
        });
        connection.addEventListener(E.connection.CONNECTION_FAILED, (e, msg, cred, details) => {
            state.connection = 'failed';
            state.connectionError = `${e}${msg ? `: ${msg}` : ''}`;
            ev('CONNECTION_FAILED', { error: e, message: msg || null, details: details || null });
        });
        connection.addEventListener(E.connection.CONNECTION_DISCONNECTED, msg => {
            if (state.connection !== 'failed') {
                state.connection = 'disconnected';
            }
            ev('CONNECTION_DISCONNECTED', { message: msg || null });
        });
        state.connection = 'connecting';
        connection.connect({});
    }

    async function joinConference(o) {
        const { events: E } = JitsiMeetJS;
        const C = E.conference;
        if (!o.noMedia) {
            state.localTracks = await JitsiMeetJS.createLocalTracks({
                devices: o.devices || [ 'audio', 'video' ],
                resolution: o.resolution || 180,
                ...(o.trackOptions || {})
            });
            ev('LOCAL_TRACKS', { types: state.localTracks.map(t => t.getType()) });
        }
        conference = connection.initJitsiConference(o.room, {
            p2p: { enabled: false },
            openBridgeChannel: 'websocket',
            ...(o.conference || {})
        });
        conference.on(C.CONFERENCE_JOINED, () => {
            state.conference = 'joined';
            state.myId = conference.myUserId();
            ev('CONFERENCE_JOINED', { id: state.myId });
        });
        conference.on(C.CONFERENCE_FAILED, (e, ...rest) => {
            state.conference = 'failed';
            state.conferenceError = String(e);
            ev('CONFERENCE_FAILED', { error: e, detail: rest.map(String) });
        });
        conference.on(C.CONFERENCE_ERROR, (e, ...rest) => {
            ev('CONFERENCE_ERROR', { error: e, detail: rest.map(String) });
        });
        conference.on(C.CONFERENCE_LEFT, () => ev('CONFERENCE_LEFT'));
        conference.on(C.KICKED, () => ev('KICKED'));
        conference.on(C.USER_JOINED, (id, user) => {
            const r = remoteEntry(id);
            r.joined = true;
            r.left = false;
            r.name = user && user.getDisplayName ? user.getDisplayName() || r.name : r.name;
            ev('USER_JOINED', { id, name: r.name });
        });
        conference.on(C.USER_LEFT, (id, user) => {
            const r = remoteEntry(id);
            r.left = true;
            ev('USER_LEFT', { id, name: user && user.getDisplayName ? user.getDisplayName() : null });
        });
        conference.on(C.DISPLAY_NAME_CHANGED, (id, name) => {
            remoteEntry(id).name = name;
            ev('DISPLAY_NAME_CHANGED', { id, name });
        });
        conference.on(C.TRACK_ADDED, track => {
            if (track.isLocal()) {
                return;
            }
            const d = describeTrack(track);
            d.removed = false;
            d.track = track;
            state.tracks.push(d);
            ev('TRACK_ADDED', { participant: d.participant, type: d.type, muted: d.muted, ssrc: d.ssrc });
        });
        conference.on(C.TRACK_REMOVED, track => {
            if (track.isLocal()) {
                return;
            }
            for (const d of state.tracks) {
                if (d.track === track) {
                    d.removed = true;
                }
            }
            ev('TRACK_REMOVED', { participant: track.getParticipantId(), type: track.getType() });
        });
        conference.on(C.TRACK_MUTE_CHANGED, track => {
            const local = track.isLocal();
            const m = {
                t: Date.now() - t0,
                participant: local ? state.myId : track.getParticipantId(),
                type: track.getType(),
                muted: track.isMuted(),
                local
            };
            state.mutes.push(m);
            for (const d of state.tracks) {
                if (d.track === track) {
                    d.muted = m.muted;
                }
            }
            ev('TRACK_MUTE_CHANGED', m);
        });
        // The bridge channel (colibri WebSocket) and what the SFU says on it.
        if (C.DATA_CHANNEL_OPENED) {
            conference.on(C.DATA_CHANNEL_OPENED, () => ev('DATA_CHANNEL_OPENED'));
        }
        conference.on(C.DOMINANT_SPEAKER_CHANGED, id => ev('DOMINANT_SPEAKER_CHANGED', { id }));
        if (C.CONNECTION_INTERRUPTED) {
            conference.on(C.CONNECTION_INTERRUPTED, () => ev('MEDIA_CONNECTION_INTERRUPTED'));
        }
        if (C.CONNECTION_ESTABLISHED) {
            conference.on(C.CONNECTION_ESTABLISHED, () => ev('MEDIA_CONNECTION_ESTABLISHED'));
        }
        if (o.name) {
            conference.setDisplayName(o.name);
        }
        for (const t of state.localTracks) {
            await conference.addTrack(t);
        }
        state.conference = 'joining';
        conference.join();
    }

    // One local track of `type` muted (true) or unmuted (false).
    async function setMuted(type, muted) {
        const track = state.localTracks.find(t => t.getType() === type);
        if (!track) {
            throw new Error(`no local ${type} track`);
        }
        await (muted ? track.mute() : track.unmute());
        ev(muted ? 'LOCAL_MUTE' : 'LOCAL_UNMUTE', { type });
    }

    // Leave the conference and close the connection.
    async function leave() {
        if (conference) {
            await conference.leave();
        }
        state.conference = 'left';
        for (const t of state.localTracks) {
            try {
                await t.dispose();
            } catch (e) {
                err('dispose', e);
            }
        }
        if (connection) {
            connection.disconnect();
        }
        ev('LEFT');
    }

    // inbound-rtp of every captured peer connection, with the remote participant owning each
    // SSRC when a remote track says so (by SSRC, else by MediaStreamTrack id).
    async function inbound() {
        const out = [];
        const pcs = window.__liltPCs || [];
        for (let i = 0; i < pcs.length; i++) {
            const pc = pcs[i];
            if (pc.signalingState === 'closed') {
                continue;
            }
            let report;
            try {
                report = await pc.getStats();
            } catch (e) {
                err('getStats', e);
                continue;
            }
            report.forEach(s => {
                if (s.type !== 'inbound-rtp') {
                    return;
                }
                const kind = s.kind || s.mediaType;
                const owner = state.tracks.find(d => !d.removed && d.type === kind
                    && ((d.ssrc !== null && Number(d.ssrc) === Number(s.ssrc))
                        || (s.trackIdentifier && d.trackId === s.trackIdentifier)));
                out.push({
                    pc: i,
                    ssrc: s.ssrc,
                    kind,
                    bytes: s.bytesReceived || 0,
                    packets: s.packetsReceived || 0,
                    frameHeight: s.frameHeight || null,
                    participant: owner ? owner.participant : null
                });
            });
        }
        return out;
    }

    // What this participant sends: each outbound video layer (its rid, resolution, bytes
    // and why the browser limits it) and the bandwidth the browser estimates it has.
    async function outbound() {
        const layers = [];
        let availableOutgoingBitrate = null;
        const pcs = window.__liltPCs || [];
        for (const pc of pcs) {
            if (pc.signalingState === 'closed') {
                continue;
            }
            let report;
            try {
                report = await pc.getStats();
            } catch (e) {
                continue;
            }
            report.forEach(s => {
                if (s.type === 'outbound-rtp' && (s.kind || s.mediaType) === 'video') {
                    layers.push({
                        rid: s.rid || null,
                        ssrc: s.ssrc,
                        frameHeight: s.frameHeight || 0,
                        bytes: s.bytesSent || 0,
                        limitation: s.qualityLimitationReason || null,
                        active: s.active
                    });
                } else if (s.type === 'candidate-pair' && s.nominated
                        && typeof s.availableOutgoingBitrate === 'number') {
                    availableOutgoingBitrate = Math.max(availableOutgoingBitrate || 0,
                        s.availableOutgoingBitrate);
                }
            });
        }
        return { layers, availableOutgoingBitrate };
    }

    async function snapshot() {
        return {
            connection: state.connection,
            connectionError: state.connectionError,
            conference: state.conference,
            conferenceError: state.conferenceError,
            myId: state.myId,
            localTracks: state.localTracks.map(t => ({ type: t.getType(), muted: t.isMuted() })),
            remote: state.remote,
            tracks: state.tracks.map(d => {
                const { track, ...rest } = d;

                return rest;
            }),
            mutes: state.mutes,
            inbound: await inbound(),
            outbound: await outbound(),
            peerConnections: (window.__liltPCs || []).length,
            xmpp: window.__liltXmpp || [],
            events: state.events,
            errors: state.errors
        };
    }

    window.addEventListener('error', e => err('window', e.error || e.message));
    window.addEventListener('unhandledrejection', e => err('unhandledrejection', e.reason));

    window.lilt = { start, setMuted, leave, snapshot, bundleLoaded: typeof JitsiMeetJS === 'object' };
})();
