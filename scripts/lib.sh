# Shell functions the project's scripts share (sourced, never run): running as root, installing
# Debian packages, reporting how long each phase took, and starting and stopping a server for
# the benchmarks.

# as_root CMD...: run as root, through sudo when this user is not.
as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# apt_install PKG...: install Debian packages without recommends. The package lists are
# refreshed once: not again when apt-get updated them in the last hour (each deps script calls
# this on its own; on a fresh machine the first one updates and the others reuse the lists).
# Waits for another apt or dpkg run to let go of its lock instead of failing on it.
apt_install() {
    [ "$#" -gt 0 ] || return 0
    local wait=(-o DPkg::Lock::Timeout=600)
    if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -mmin -60 -print -quit 2>/dev/null)" ]; then
        as_root apt-get "${wait[@]}" update
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get "${wait[@]}" install -y \
        --no-install-recommends "$@"
}

# phase NAME: print the seconds since the script started and what starts now, so a log shows
# where a run's time went.
phase() {
    echo "$(basename "$0"): [${SECONDS} s] $*"
}

# wait_port NAME PORT PID LOG [SECONDS]: wait up to SECONDS (10) for a server to accept on
# loopback PORT. Fails, with the end of LOG, when it does not or when process PID exits first.
wait_port() {
    local name=$1 port=$2 pid=$3 log=$4 secs=${5:-10}
    for _ in $(seq 1 $((secs * 10))); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "$(basename "$0"): $name exited before it listened on $port:" >&2
            tail -20 "$log" >&2 2>/dev/null || true
            return 1
        fi
        sleep 0.1
    done
    echo "$(basename "$0"): $name did not listen on $port within $secs s:" >&2
    tail -20 "$log" >&2 2>/dev/null || true
    return 1
}

# ports_free PORT...: fail, saying which, when something already listens on a loopback PORT.
ports_free() {
    local port
    for port in "$@"; do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$(basename "$0"): something already listens on 127.0.0.1:$port; stop it first" >&2
            return 1
        fi
    done
}

# stop_pid PID: stop a server this script started, and reap it (nothing when PID is empty).
stop_pid() {
    if [ -n "${1:-}" ]; then
        kill "$1" 2>/dev/null || true
        wait "$1" 2>/dev/null || true
    fi
}
