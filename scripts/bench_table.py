#!/usr/bin/env python3
"""Render scripts/bench.sh results (one loadgen JSON line per run) as a markdown table:
each scenario's figure for Lilt and for Prosody, and how many times better Lilt does.

Usage: bench_table.py results.jsonl CORES
"""
import json
import sys


def load(path):
    runs = [json.loads(line) for line in open(path) if line.strip().startswith("{")]
    return runs


def occupants(run):
    # "1 room(s) x 100 occupants, ..."
    try:
        return int(run["note"].split(" x ")[1].split()[0])
    except (IndexError, ValueError):
        return 0


def pick(runs, label, scenario, transport="tcp", room=None):
    for r in runs:
        if r["label"] == label and r["scenario"] == scenario and r["transport"] == transport:
            if room is None or occupants(r) == room:
                return r
    return None


def fmt(v, digits=1):
    if v is None:
        return "n/a"
    if v >= 100:
        return f"{v:,.0f}"
    return f"{v:.{digits}f}"


def ratio(lilt, prosody, lower_is_better):
    if not lilt or not prosody:
        return "n/a"
    r = prosody / lilt if lower_is_better else lilt / prosody
    return f"{r:.1f}×"


def largest_room(runs, label):
    """The largest room (1 message per occupant per second) whose p99 stayed under 100 ms
    with at least 99% of deliveries made, and the first size that failed."""
    ok, failed = None, None
    for r in runs:
        if r["label"] != label or r["scenario"] != "muc":
            continue
        n = occupants(r)
        good = r["p99_ms"] < 100 and r["errors"] <= r["ops"] // 100
        if good and (ok is None or n > ok):
            ok = n
        if not good and (failed is None or n < failed):
            failed = n
    return ok, failed


def main():
    runs = load(sys.argv[1])
    cores = sys.argv[2] if len(sys.argv) > 2 else "?"
    rows = []

    def row(name, scenario, field, unit, lower_is_better, transport="tcp", room=None, digits=1):
        l = pick(runs, "lilt", scenario, transport, room)
        p = pick(runs, "prosody", scenario, transport, room)
        lv = l[field] if l else None
        pv = p[field] if p else None
        rows.append((name, f"{fmt(lv, digits)} {unit}", f"{fmt(pv, digits)} {unit}",
                     ratio(lv, pv, lower_is_better)))

    row("Anonymous logins, TCP: rate", "login-anon", "ops_per_second", "/s", False)
    row("Anonymous logins, TCP: server CPU per login", "login-anon", "server_cpu_us_per_op", "µs", True)
    row("Anonymous logins, TCP: p99 latency (50 in flight)", "login-anon", "p99_ms", "ms", True)
    row("Anonymous logins, WebSocket: rate", "login-anon", "ops_per_second", "/s", False, "ws")
    row("Anonymous logins, WebSocket: server CPU per login", "login-anon", "server_cpu_us_per_op", "µs", True, "ws")
    row("SCRAM-SHA-1 logins, TCP: rate", "login-scram", "ops_per_second", "/s", False)
    row("SCRAM-SHA-1 logins, TCP: server CPU per login", "login-scram", "server_cpu_us_per_op", "µs", True)
    row("Idle session, TCP: server memory", "idle", "server_rss_kib_per_session", "KiB", True)
    row("Idle session, WebSocket: server memory", "idle", "server_rss_kib_per_session", "KiB", True, "ws")
    row("Groupchat, 100 occupants × 1 msg/s: server CPU per delivery", "muc", "server_cpu_us_per_op", "µs", True, room=100)
    row("Groupchat, 100 occupants × 1 msg/s: p99 delivery", "muc", "p99_ms", "ms", True, room=100, digits=2)
    row("Jitsi presence (1 KB), 100 occupants × 1/s: server CPU per delivery", "presence", "server_cpu_us_per_op", "µs", True, room=100)
    row("Jitsi presence (1 KB), 100 occupants × 1/s: p99 delivery", "presence", "p99_ms", "ms", True, room=100, digits=2)
    lok, lfail = largest_room(runs, "lilt")
    pok, pfail = largest_room(runs, "prosody")

    def room_text(ok, failed):
        s = f"{ok} occupants" if ok else "none tried passed"
        if failed:
            s += f" (p99 ≥ 100 ms or < 99% delivered at {failed})"
        else:
            s += " (largest tried)"
        return s

    rows.append(("Largest room holding p99 < 100 ms, 1 msg/s per occupant", room_text(lok, lfail),
                 room_text(pok, pfail), f"{lok / pok:.1f}×" if lok and pok else "n/a"))

    print(f"Measured on {cores} cores: each server pinned to core 0, the load generator to core 1; "
          "server CPU and memory from the server's own /proc accounting.\n")
    print("| scenario | Lilt | Prosody 0.12 | Lilt better by |")
    print("|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print()


if __name__ == "__main__":
    main()
