#!/usr/bin/env node
// Builds the meeting page into dist/ (gitignored), which `lilt serve` answers at / and /<room>
// (host/src/runtime/http/meeting_page.rs). No bundler: the page is plain JS and CSS in src/,
// copied as they are, next to the two browser bundles it loads from npm packages:
//   - vendor/lib-jitsi-meet.min.js: the pinned lib-jitsi-meet tarball's bundle
//     (scripts/lib-jitsi-meet.sh host/web/vendor);
//   - node_modules/jquery/dist/jquery.min.js: jQuery, the bundle's external (`npm ci` here).
// index.html names every asset with `?v=<build id>` (a hash of all of them), so a rebuild is
// never hidden by a cached copy. Run by scripts/web.sh; `node build.mjs` works once those two
// inputs are there.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SRC = path.join(HERE, 'src');
const DIST = path.join(HERE, 'dist');
const VENDOR = [
    [ 'vendor/lib-jitsi-meet.min.js', 'assets/lib-jitsi-meet.min.js' ],
    [ 'vendor/lib-jitsi-meet.min.js.LICENSE.txt', 'assets/lib-jitsi-meet.min.js.LICENSE.txt' ],
    [ 'vendor/LICENSE', 'assets/lib-jitsi-meet.LICENSE.txt' ],
    [ 'node_modules/jquery/dist/jquery.min.js', 'assets/jquery.min.js' ],
    [ 'node_modules/jquery/LICENSE.txt', 'assets/jquery.LICENSE.txt' ]
];

function files(dir, rel = '') {
    const out = [];
    for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
        const r = path.join(rel, e.name);
        if (e.isDirectory()) {
            out.push(...files(dir, r));
        } else {
            out.push(r);
        }
    }

    return out.sort();
}

for (const [ from ] of VENDOR) {
    if (!fs.existsSync(path.join(HERE, from))) {
        console.error(`build.mjs: ${from} is missing; run scripts/web.sh`);
        process.exit(1);
    }
}
const tmp = `${DIST}.tmp`;
fs.rmSync(tmp, { recursive: true, force: true });
const hash = crypto.createHash('sha256');
const copy = (from, to) => {
    const data = fs.readFileSync(from);
    hash.update(to).update(data);
    fs.mkdirSync(path.dirname(path.join(tmp, to)), { recursive: true });
    fs.writeFileSync(path.join(tmp, to), data);
};
for (const f of files(SRC)) {
    copy(path.join(SRC, f), f);
}
for (const [ from, to ] of VENDOR) {
    copy(path.join(HERE, from), to);
}
const build = hash.digest('hex').slice(0, 12);
const index = path.join(tmp, 'index.html');
fs.writeFileSync(index, fs.readFileSync(index, 'utf8').replaceAll('__BUILD__', build));
// Swap in the new build at once, so a running server never serves half of one.
fs.rmSync(DIST, { recursive: true, force: true });
fs.renameSync(tmp, DIST);
console.log(`build.mjs: meeting page ${build} built into ${path.relative(process.cwd(), DIST) || DIST}`);
