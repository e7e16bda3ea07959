// How both browser drivers (meet.mjs, meeting-page.mjs) start Debian's Chromium: headless, as
// root without the sandbox, fake camera and microphone granted without a prompt, and none of
// Chromium's own background connections (this machine's closed network refuses them, many at
// a time). lilt's generated certificate is accepted: pages and bridge channels may use its
// TLS listener.
export const CHROMIUM = '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--use-fake-ui-for-media-stream',
    '--use-fake-device-for-media-stream',
    '--ignore-certificate-errors'
];
