# shellcheck shell=bash
# Helpers the benchmark scripts share (sourced, not run): process CPU and memory readings, the
# noise indicator, nginx worker lookup, stopping what a script started, installing a missing peer.
# A script sets INSTALL (1: may apt-get install) and CLK_TCK before it uses them.

# Installs Debian packages when allowed (INSTALL=1, root, apt-get present); never fails.
apt_install() { # package…
    if [ "$INSTALL" = 1 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "== installing $* with apt" >&2
        apt-get update -qq >/dev/null 2>&1 || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1 || true
    fi
}

# utime + stime of every thread of the given processes, in clock ticks (0 for none).
cpu_ticks() { # pid…
    local p files=()
    for p in "$@"; do [ -n "$p" ] && files+=(/proc/"$p"/task/*/stat); done
    [ ${#files[@]} -eq 0 ] && { echo 0; return; }
    cat "${files[@]}" 2>/dev/null | sed 's/^.*) //' | awk '{ s += $12 + $13 } END { print s + 0 }'
}

# Busy and total clock ticks of one CPU so far (/proc/stat: busy = all but idle and iowait).
cpu_busy() { # cpu
    awk -v c="cpu$1" '$1 == c { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat
}

# Share of a CPU (%) that processes other than the known ones used between two cpu_busy readings.
others_pct() { # "busy0 total0" "busy1 total1" known-ticks
    awk -v a="$1" -v b="$2" -v k="$3" 'BEGIN { split(a, x, " "); split(b, y, " "); t = y[2] - x[2];
        o = (y[1] - x[1] - k) / (t > 0 ? t : 1) * 100; printf "%.0f", (o < 0 ? 0 : o) }'
}

# Clock ticks of a set of CPUs so far (/proc/stat), as "usersys irqsoft steal total": usersys =
# user + nice + system, irqsoft = irq + softirq, total = the eight columns up to steal.
cpu_cols() { # "cpu …" (e.g. "0" or "0 1")
    awk -v list=" $1 " '$1 ~ /^cpu[0-9]+$/ && index(list, " " substr($1, 4) " ") {
        u += $2 + $3 + $4; i += $7 + $8; s += $9; t += $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }
        END { print u + 0, i + 0, s + 0, t + 0 }' /proc/stat
}

# Splits a CPU set's time between two cpu_cols readings, given the ticks KNOWN billed meanwhile to
# the tasks meant to run there. Prints "others unbilled_ticks unbilled steal" (the last as % of
# the interval):
#   others   = other tasks' user + system (usersys beyond KNOWN) plus steal: the noise indicator;
#   unbilled = irq + softirq time billed to none of the known tasks. With tick accounting (no
#              IRQ_TIME_ACCOUNTING) a tick that lands in irq or softirq is billed to the task it
#              interrupted (its stime) *and* to the irq/softirq column; one that lands on the idle
#              task is billed to no task. So usersys + irqsoft − KNOWN − other tasks is the CPU the
#              kernel spent there that no task of KNOWN was charged for.
cpu_split() { # "cols before" "cols after" known-ticks
    awk -v a="$1" -v b="$2" -v k="$3" 'BEGIN { split(a, x, " "); split(b, y, " ");
        u = y[1] - x[1]; i = y[2] - x[2]; s = y[3] - x[3]; t = y[4] - x[4]; if (t <= 0) t = 1;
        o = u - k; if (o < 0) o = 0;
        n = u + i - k - o; if (n < 0) n = 0;
        printf "%.0f %d %.0f %.0f\n", (o + s) / t * 100, n, n / t * 100, s / t * 100 }'
}

# CPU µs per request from clock ticks.
us_per_req() { # ticks requests
    awk -v t="$1" -v n="$2" -v hz="$CLK_TCK" 'BEGIN { if (n > 0) printf "%.2f", t / hz * 1e6 / n; else print "?" }'
}

# The worker of an nginx master started with `daemon off`.
nginx_worker() { # master pid
    local w
    for _ in $(seq 1 50); do
        w=$(pgrep -P "$1" | head -n 1 || true)
        if [ -n "$w" ]; then echo "$w"; return 0; fi
        sleep 0.1
    done
    echo "no nginx worker under $1" >&2
    return 1
}

# Whether a process runs (an exited child not yet waited for does not).
running() { # pid
    local state
    state=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)
    [ -n "$state" ] && [ "$state" != Z ]
}

# Stops processes this script started and waits for them (SIGKILL after 10 s).
stop() { # pid…
    [ $# -eq 0 ] && return 0
    kill "$@" 2>/dev/null || true
    local p left
    for _ in $(seq 1 100); do
        left=0
        for p in "$@"; do running "$p" && left=1; done
        [ "$left" = 0 ] && break
        sleep 0.1
    done
    [ "$left" = 1 ] && kill -9 "$@" 2>/dev/null
    for p in "$@"; do wait "$p" 2>/dev/null || true; done
}

# VmRSS of a process, KiB.
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# Waits (15 s at most) for a 200 from 127.0.0.1:PORT with `Host: $HOST_HDR`.
wait_200() { # port
    for _ in $(seq 1 150); do
        if [ "$(curl -s -m 1 -o /dev/null -w '%{http_code}' -H "Host: $HOST_HDR" "http://127.0.0.1:$1/")" = 200 ]; then
            return 0
        fi
        sleep 0.1
    done
    echo "no 200 from port $1" >&2
    tail -n 5 "$WORK"/*.err >&2 2>/dev/null || true
    return 1
}

# All N workers of an nginx master started with `daemon off`, one pid a line.
nginx_workers() { # master-pid N
    local w
    for _ in $(seq 1 50); do
        w=$(pgrep -P "$1" || true)
        if [ -n "$w" ] && [ "$(wc -l <<< "$w")" -ge "$2" ]; then echo "$w"; return 0; fi
        sleep 0.1
    done
    echo "fewer than $2 nginx workers under $1" >&2
    return 1
}

# An nginx config $WORK/NAME.conf: WORKERS worker processes (default 1), no access log, temp paths
# under $WORK, long keep-alive, `http-body` inside `http { }` (NOFILE: worker connections, default
# 4096).
nginx_conf() { # name http-body [workers]
    cat > "$WORK/$1.conf" <<CONF
worker_processes ${3:-1};
worker_rlimit_nofile ${NOFILE:-4096};
daemon off;
pid $WORK/$1.pid;
error_log $WORK/$1.err warn;
events { worker_connections ${NOFILE:-4096}; }
http {
    access_log off;
    default_type text/plain;
    client_body_temp_path $WORK/$1-body;
    proxy_temp_path $WORK/$1-proxy;
    fastcgi_temp_path $WORK/$1-fcgi;
    uwsgi_temp_path $WORK/$1-uwsgi;
    scgi_temp_path $WORK/$1-scgi;
    keepalive_timeout 600s;
    keepalive_requests 10000000;
    $2
}
CONF
}
