#!/usr/bin/env python3
"""Cost per tenant of a hook plugin (driven by scripts/plugin_cost_bench.sh).

For each language and vhost count, it writes a config with N vhosts each loading the same
brand plugin component, starts `lilt serve` with a cold artifact cache (empty data_dir) and
then again with the warm one, and measures:
  - startup: from spawning the process to both listeners logging `Listening.`;
  - RSS idle (VmRSS, and PSS from smaps_rollup) two seconds after listening;
  - RSS per extra vhost, against the same language's 1-vhost run;
  - hook call time: one anonymous XMPP session on t0 sends `iq get` queries the plugin answers
    (a hooked iq); the server's own `lilt_plugin_call_duration_seconds` sum/count for that
    plugin and vhost gives the mean call time (the first call after an idle period, which
    instantiates, is reported apart), and the client measures the round trip;
  - RSS after one such iq on every vhost (every vhost then holds a live instance).
Bounded: at most `--reps` warm starts per cell, 20 queries per run, 60 s per start.
Prints a Markdown table (medians of the warm runs) and writes the raw runs as JSON.
Benches on a shared machine are noisy: read the medians, not single runs.
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

PORT = 15422
QUERIES = 20
START_TIMEOUT = 60.0
# Where auth-anonymous.wasm is (set from --plugin-dir).
PLUGIN_DIR = ""


def config(n, plugin_path, port):
    out = [
        'data_dir = "data"',
        f'plugin_dir = "{PLUGIN_DIR}"',
        'log_level = "info"',
        "",
        "[[listeners]]",
        'type = "c2s"',
        f'bind = "127.0.0.1:{port}"',
        "",
        "[[listeners]]",
        'type = "http"',
        f'bind = "127.0.0.1:{port + 1}"',
        "",
    ]
    for i in range(n):
        out += [
            "[[vhosts]]",
            f'domain = "t{i}.example"',
            "allow_unencrypted = true",
            'auth = { plugin = "auth-anonymous", grants = [] }',
            "",
            "[[vhosts.plugins]]",
            'plugin = "brand"',
            f'path = "{plugin_path}"',
            'grants = ["stanzas"]',
            f'settings = {{ welcome = "Welcome to t{i}!", colour = "#1d76ba" }}',
            "",
        ]
    return "\n".join(out)


def proc_mem(pid):
    status = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "RssAnon", "RssFile", "RssShmem"):
                status[k] = int(v.split()[0])
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k == "Pss":
                status["Pss"] = int(v.split()[0])
    return status


class Xmpp:
    """A minimal plain-TCP c2s client: SASL ANONYMOUS, bind, iq round trips."""

    def __init__(self, port, domain):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = ""
        self.domain = domain
        self.open()
        self.wait(r"ANONYMOUS")
        self.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='ANONYMOUS'/>")
        self.wait(r"<success")
        self.buf = ""
        self.open()
        self.wait(r"</stream:features>")
        self.send("<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>")
        self.wait(r"id=['\"]bind['\"]")
        self.wait(r"</iq>")

    def open(self):
        self.send(
            f"<?xml version='1.0'?><stream:stream to='{self.domain}' xmlns='jabber:client' "
            "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
        )

    def send(self, data):
        self.s.sendall(data.encode())

    def wait(self, pattern):
        while True:
            m = re.search(pattern, self.buf)
            if m:
                self.buf = self.buf[m.end():]
                return
            chunk = self.s.recv(65536)
            if not chunk:
                raise RuntimeError(f"connection closed waiting for {pattern}: {self.buf[-300:]}")
            self.buf += chunk.decode(errors="replace")

    def brand_query(self, i):
        started = time.perf_counter()
        self.send(
            f"<iq type='get' id='q{i}' to='{self.domain}'><query xmlns='urn:example:brand'/></iq>"
        )
        self.wait(rf"id=['\"]q{i}['\"][^>]*>.*?</iq>")
        return time.perf_counter() - started

    def close(self):
        try:
            self.send("</stream:stream>")
        finally:
            self.s.close()


def plugin_times(port, vhost):
    text = urllib.request.urlopen(f"http://127.0.0.1:{port + 1}/metrics", timeout=10).read().decode()
    total = {}
    for kind in ("sum", "count"):
        m = re.search(
            rf'lilt_plugin_call_duration_seconds_{kind}\{{plugin="brand",vhost="{re.escape(vhost)}"[^}}]*\}} (\S+)',
            text,
        )
        total[kind] = float(m.group(1)) if m else 0.0
    return total


def run(binary, workdir, n, lang, plugin_path, cold, calls, released_wait=0):
    os.makedirs(workdir, exist_ok=True)
    if cold:
        shutil.rmtree(os.path.join(workdir, "data"), ignore_errors=True)
    cfg = os.path.join(workdir, "lilt.toml")
    with open(cfg, "w") as f:
        f.write(config(n, plugin_path, PORT))
    log_path = os.path.join(workdir, "serve.log")
    log = open(log_path, "w")
    started = time.perf_counter()
    p = subprocess.Popen([binary, "serve", "--config", cfg], cwd=workdir, stdout=log, stderr=log)
    result = {"lang": lang, "vhosts": n, "cold": cold}
    try:
        while True:
            with open(log_path) as f:
                if f.read().count("Listening.") >= 2:
                    break
            if p.poll() is not None:
                raise RuntimeError(f"lilt exited: see {log_path}")
            if time.perf_counter() - started > START_TIMEOUT:
                raise RuntimeError(f"not listening after {START_TIMEOUT} s: see {log_path}")
            time.sleep(0.02)
        result["startup_s"] = time.perf_counter() - started
        time.sleep(2)
        result["idle"] = proc_mem(p.pid)
        if calls:
            c = Xmpp(PORT, "t0.example")
            t0 = plugin_times(PORT, "t0.example")
            rtts = [c.brand_query(0)]
            t1 = plugin_times(PORT, "t0.example")
            rtts += [c.brand_query(i) for i in range(1, QUERIES)]
            t2 = plugin_times(PORT, "t0.example")
            c.close()
            # The first call on the vhost since load (it instantiates when no instance is
            # live), then the mean of the calls on the live instance.
            result["call_first_s"] = (t1["sum"] - t0["sum"]) / max(t1["count"] - t0["count"], 1)
            live = t2["count"] - t1["count"]
            result["call_live_mean_s"] = (t2["sum"] - t1["sum"]) / live if live else None
            result["rtt_first_s"] = rtts[0]
            result["rtt_median_s"] = statistics.median(rtts[1:])
            # One query on every other vhost: each then holds a live instance.
            for i in range(1, n):
                c = Xmpp(PORT, f"t{i}.example")
                c.brand_query(0)
                c.close()
            time.sleep(1)
            result["active"] = proc_mem(p.pid)
            if released_wait:
                # Past sandbox::IDLE_RELEASE (and a sweep): the idle instances are gone again.
                time.sleep(released_wait)
                result["released"] = proc_mem(p.pid)
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        log.close()
    return result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--plugin", action="append", required=True, help="LANG=PATH")
    ap.add_argument("--vhosts", default="1,10,100")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--json", required=True)
    ap.add_argument("--plugin-dir", required=True, help="folder with auth_anonymous.wasm")
    ap.add_argument(
        "--released-wait",
        type=float,
        default=0,
        help="seconds to wait after the calls, then measure RSS again (first warm run of the largest vhost count only)",
    )
    ap.add_argument("--table-only", action="store_true", help="print the table of --json")
    args = ap.parse_args()
    if args.table_only:
        with open(args.json) as f:
            runs = json.load(f)
        table(runs)
        released_table(runs)
        return
    global PLUGIN_DIR
    PLUGIN_DIR = os.path.abspath(args.plugin_dir)
    runs = []
    for spec in args.plugin:
        lang, path = spec.split("=", 1)
        counts = [int(x) for x in args.vhosts.split(",")]
        max_n = max(counts)
        for n in counts:
            work = os.path.join(args.work, f"{lang}-{n}")
            r = run(args.bin, work, n, lang, path, cold=True, calls=False)
            runs.append(r)
            print(f"{lang} {n} cold: {r['startup_s']:.2f} s, {r['idle']['VmRSS'] // 1024} MiB", file=sys.stderr)
            for rep in range(args.reps):
                wait = args.released_wait if rep == 0 and n == max_n else 0
                r = run(args.bin, work, n, lang, path, cold=False, calls=True, released_wait=wait)
                runs.append(r)
                print(
                    f"{lang} {n} warm: {r['startup_s']:.2f} s, idle {r['idle']['VmRSS'] // 1024} MiB, "
                    f"active {r['active']['VmRSS'] // 1024} MiB, call first {r['call_first_s'] * 1e3:.3f} ms, live {r['call_live_mean_s'] * 1e3:.4f} ms",
                    file=sys.stderr,
                )
    with open(args.json, "w") as f:
        json.dump(runs, f, indent=1)
    table(runs)
    released_table(runs)


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def table(runs):
    print("| plugin | vhosts | startup cold | startup warm | RSS idle after a cold start | RSS idle (PSS) | per extra vhost idle: RSS (PSS) | RSS, every vhost called (per extra vhost) | hook call: first / live (server) | iq round trip |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    base = {}
    for lang in dict.fromkeys(r["lang"] for r in runs):
        for n in sorted({r["vhosts"] for r in runs if r["lang"] == lang}):
            cold = [r for r in runs if r["lang"] == lang and r["vhosts"] == n and r["cold"]]
            warm = [r for r in runs if r["lang"] == lang and r["vhosts"] == n and not r["cold"]]
            rss = med([r["idle"]["VmRSS"] for r in warm]) / 1024
            pss = med([r["idle"]["Pss"] for r in warm]) / 1024
            act = med([r["active"]["VmRSS"] for r in warm]) / 1024
            if n == 1 or lang not in base:
                base[lang] = (n, rss, pss, act)
            b = base[lang]
            extra = "" if n == b[0] else (
                f"{(rss - b[1]) / (n - b[0]):.1f} MiB ({(pss - b[2]) / (n - b[0]):.1f})"
            )
            extra_act = "" if n == b[0] else f" ({(act - b[3]) / (n - b[0]):.1f})"
            first = med([r["call_first_s"] for r in warm])
            live = med([r["call_live_mean_s"] for r in warm])
            print(
                f"| {lang} | {n} | {med([r['startup_s'] for r in cold]):.2f} s | "
                f"{med([r['startup_s'] for r in warm]):.2f} s | "
                f"{med([r['idle']['VmRSS'] for r in cold]) / 1024:.0f} MiB | {rss:.0f} MiB ({pss:.0f}) | {extra} | "
                f"{act:.0f} MiB{extra_act} | {first * 1e3:.3f} / {live * 1e3:.3f} ms | "
                f"{med([r['rtt_median_s'] for r in warm]) * 1e3:.2f} ms |"
            )


def released_table(runs):
    rows = [r for r in runs if r.get("released")]
    if rows:
        print()
        print("| plugin | vhosts | RSS idle | RSS, every vhost called | RSS after the wait |")
        print("|---|---|---|---|---|")
        for r in rows:
            print(
                f"| {r['lang']} | {r['vhosts']} | {r['idle']['VmRSS'] / 1024:.0f} MiB | "
                f"{r['active']['VmRSS'] / 1024:.0f} MiB | {r['released']['VmRSS'] / 1024:.0f} MiB |"
            )


if __name__ == "__main__":
    main()
