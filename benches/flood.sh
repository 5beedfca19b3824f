#!/usr/bin/env bash
# Memory after a connection flood (issue #11, "Memory that comes back"): does a proxy give back
# the memory that 1,500 slow connections took, once they are gone? Runs nginx 1.22.1's mail
# module and mailproxy one after the other, same config, and prints a table. See
# docs/performance.md, "Memory after a connection flood".
#
#   bash benches/flood.sh [--floods N] [--conns N] [--only nginx|mailproxy] [--plain] [--no-build]
#
#   --floods N   floods per proxy (default 3)
#   --conns N    connections per flood, half implicit TLS, half plain (default 1500)
#   --only P     measure one proxy
#   --plain      every connection plain (no TLS at all)
#   --no-build   use $CARGO_TARGET_DIR/release/mailproxy as it is
#   MAILPROXY_ENV="VAR=value ..."  extra environment for mailproxy (allocator experiments,
#                e.g. MAILPROXY_ENV="MALLOC_ARENA_MAX=1")
#   MAILPROXY_BIN=PATH             another mailproxy binary (e.g. a build of an older commit)
#
# Each proxy runs with `worker_processes 1` and two IMAP server blocks on loopback: one with
# implicit TLS, one plain, and an auth_http that is never asked (the flood never logs in). Per
# proxy: the baseline (sum of the workers' VmRSS, their open fds) is taken once, 2 s after
# start; then each flood opens its connections (at most 100 connecting at a time), each sends one
# byte every 2 s for 20 s (a TLS one after its handshake, inside TLS; no line ever ends, so the
# proxy only buffers) and closes. RSS is sampled every second from the first connection until
# 15 s after the last one closed. "after 10 s" is the sample 10 s after the flood ended; delta
# is that minus the baseline; "fds back" compares the workers' open fds at that point with the
# baseline's. The master's RSS is shown too (it should not move).
#
# Loopback only; every process started here is stopped on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
FLOODS=3 CONNS=1500 ONLY="" BUILD=1 TLS_EVERY=2
while (( $# )); do
    case $1 in
        --floods) FLOODS=$2; shift ;;
        --conns) CONNS=$2; shift ;;
        --only) ONLY=$2; shift ;;
        --no-build) BUILD=0 ;;
        --plain) TLS_EVERY=0 ;;
        -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
        *) echo "flood.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
PROXIES=(nginx mailproxy)
[[ -n $ONLY ]] && PROXIES=("$ONLY")

log() { printf '[flood.sh %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

# ---------------------------------------------------------------- processes and cleanup
WORK=$(mktemp -d /tmp/mailproxy-flood.XXXXXX)
declare -A PID=()
cleanup() {
    local name
    for name in "${!PID[@]}"; do kill -TERM "${PID[$name]}" 2>/dev/null || true; done
    for name in "${!PID[@]}"; do wait "${PID[$name]}" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# 1,500 client sockets here, as many in the proxy; the proxies get their own limit below.
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"

# ---------------------------------------------------------------- build
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
MAILPROXY=${MAILPROXY_BIN:-}
if [[ -z $MAILPROXY && " ${PROXIES[*]} " == *" mailproxy "* ]]; then
    if (( BUILD )); then (cd "$ROOT" && cargo build --release -p mailproxy); fi
    # A copy, so that another build into the same target dir cannot swap it mid-run.
    cp "$CARGO_TARGET_DIR/release/mailproxy" "$WORK/mailproxy"
    MAILPROXY=$WORK/mailproxy
fi

# ---------------------------------------------------------------- ports, certificate, config
port_free() { [[ -z $(ss -Htan "( sport = :$1 )" 2>/dev/null) ]]; }
listening() { [[ -n $(ss -Hltn "( sport = :$1 )" 2>/dev/null) ]]; }
EPHEMERAL_START=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range)
for _ in $(seq 20); do
    BASE=$(( 20000 + (RANDOM % ((EPHEMERAL_START - 20010) / 10)) * 10 ))
    ok=1
    for i in 0 1 2; do port_free $((BASE + i)) || ok=0; done
    (( ok )) && break
done
AUTH_PORT=$BASE TLS_PORT=$((BASE + 1)) PLAIN_PORT=$((BASE + 2))

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=localhost -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null

write_config() { # NAME
    cat > "$WORK/$1.conf" <<EOF
load_module /usr/lib/nginx/modules/ngx_mail_module.so;
$([[ $(id -u) == 0 ]] && echo "user root;")
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile 20000;
pid $WORK/$1.pid;
error_log $WORK/$1-error.log error;
events { worker_connections 8192; }
mail {
    auth_http 127.0.0.1:$AUTH_PORT/auth;
    ssl_certificate $WORK/cert.pem;
    ssl_certificate_key $WORK/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    server {
        listen 127.0.0.1:$TLS_PORT ssl;
        protocol imap;
    }
    server {
        listen 127.0.0.1:$PLAIN_PORT;
        protocol imap;
    }
}
EOF
}

# The auth_http server: the flood never logs in, so it only has to answer.
cat > "$WORK/auth.py" <<'PY'
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Auth-Status", "Invalid login or password")
        self.send_header("Auth-Wait", "3")
        self.end_headers()
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY

# The flood client and the sampler: one asyncio process per proxy.
cat > "$WORK/flood.py" <<'PY'
import asyncio, os, ssl, sys, time

master, tls_port, plain_port, conns, floods, tls_every = (int(a) for a in sys.argv[1:7])
label = sys.argv[7]
LIFETIME_BYTES, INTERVAL, AFTER = 10, 2.0, 15  # one byte every 2 s for 20 s; 15 s of samples

def workers():
    try:
        with open(f"/proc/{master}/task/{master}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []

def rss_kib(pid, field="VmRSS:"):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0

def fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0

def sample():
    """(workers' VmRSS, their open fds, the master's VmRSS, workers' RssAnon), KiB."""
    ws = workers()
    return (sum(rss_kib(w) for w in ws), sum(fds(w) for w in ws), rss_kib(master),
            sum(rss_kib(w, "RssAnon:") for w in ws))

ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE

async def client(tls, gate, stats):
    writer = None
    try:
        async with gate:  # bounded parallel connects (and handshakes)
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", tls_port if tls else plain_port,
                                        ssl=ctx if tls else None), 15)
            await asyncio.wait_for(reader.readline(), 15)  # the greeting: the session is up
        stats["up"] += 1
        for _ in range(LIFETIME_BYTES):
            await asyncio.sleep(INTERVAL)
            writer.write(b"x")  # never a line end: the proxy just buffers
            await writer.drain()
    except (OSError, asyncio.TimeoutError, ssl.SSLError) as e:
        stats["failed"] += 1
        stats.setdefault("error", repr(e))
    finally:
        if writer is not None:
            writer.close()
            try:
                await asyncio.wait_for(writer.wait_closed(), 3)
            except (OSError, asyncio.TimeoutError, ssl.SSLError):
                writer.transport.abort()

async def flood(n, base, peak_box):
    stats = {"up": 0, "failed": 0}
    gate = asyncio.Semaphore(100)
    done = asyncio.Event()

    async def sampler():
        while not done.is_set():
            peak_box[0] = max(peak_box[0], sample()[0])
            try:
                await asyncio.wait_for(done.wait(), 1)
            except asyncio.TimeoutError:
                pass

    s = asyncio.create_task(sampler())
    started = time.monotonic()
    # Alternate TLS and plain so both kinds overlap all along.
    await asyncio.gather(*(client(tls_every > 0 and i % tls_every == 0, gate, stats)
                           for i in range(n)))
    done.set()
    await s
    return stats, time.monotonic() - started

async def main():
    await asyncio.sleep(2)
    base_rss, base_fds, base_master, base_anon = sample()
    for k in range(1, floods + 1):
        peak = [base_rss]
        stats, took = await flood(conns, base_rss, peak)
        after = []
        for _ in range(AFTER):
            await asyncio.sleep(1)
            after.append(sample())
            peak[0] = max(peak[0], after[-1][0])
        rss10, fds10, master10, anon10 = after[9]
        line = (f"proxy={label} flood={k} conns={conns} up={stats['up']} failed={stats['failed']} "
                f"flood_s={took:.1f} base_kib={base_rss} peak_kib={peak[0]} after10_kib={rss10} "
                f"after15_kib={after[-1][0]} base_fds={base_fds} fds10={fds10} "
                f"master_base_kib={base_master} master10_kib={master10} "
                f"anon_base_kib={base_anon} anon10_kib={anon10} "
                f"trace_kib={','.join(str(a[0]) for a in after)}")
        if "error" in stats:
            line += f" first_error={stats['error'].replace(' ', '_')}"
        print(line, flush=True)

asyncio.run(main())
PY

wait_listening() { # PORT NAME
    for _ in $(seq 100); do
        listening "$1" && return 0
        kill -0 "${PID[$2]}" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

start() { # NAME
    local name=$1
    case $name in
        auth) python3 "$WORK/auth.py" "$AUTH_PORT" & ;;
        nginx) nginx -c "$WORK/nginx.conf" -p "$WORK/" -e "$WORK/nginx-error.log" & ;;
        # shellcheck disable=SC2086 # MAILPROXY_ENV is a list of VAR=value words
        mailproxy) env ${MAILPROXY_ENV:-} "$MAILPROXY" -c "$WORK/mailproxy.conf" & ;;
    esac
    PID[$name]=$!
    local port=$TLS_PORT
    [[ $name == auth ]] && port=$AUTH_PORT
    if ! wait_listening "$port" "$name" || { [[ $name != auth ]] && ! wait_listening "$PLAIN_PORT" "$name"; }; then
        log "$name did not start"
        tail -5 "$WORK/$name-error.log" 2>/dev/null >&2 || true
        exit 1
    fi
}

stop() { # NAME
    local pid=${PID[$1]:-}
    [[ -n $pid ]] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    unset "PID[$1]"
    for _ in $(seq 100); do listening "$TLS_PORT" || listening "$PLAIN_PORT" || return 0; sleep 0.05; done
}

# ---------------------------------------------------------------- the floods
RESULTS=$WORK/results.txt
: > "$RESULTS"
start auth
for name in "${PROXIES[@]}"; do
    write_config "$name"
    start "$name"
    # The pid file names the master whose children are the workers.
    for _ in $(seq 100); do [[ -s $WORK/$name.pid ]] && break; sleep 0.05; done
    master=$(cat "$WORK/$name.pid")
    log "$name: master $master, $FLOODS floods of $CONNS connections (about $(( FLOODS * 45 )) s)"
    python3 "$WORK/flood.py" "$master" "$TLS_PORT" "$PLAIN_PORT" "$CONNS" "$FLOODS" "$TLS_EVERY" "$name" \
        | tee -a "$RESULTS" >&2
    stop "$name"
done

# ---------------------------------------------------------------- report
python3 - "$RESULTS" <<'PY'
import sys
rows = [dict(kv.split("=", 1) for kv in line.split()) for line in open(sys.argv[1]) if line.strip()]
mb = lambda kib: f"{int(kib) / 1024:.1f}"
print()
print("RSS in MiB: the sum of the workers' VmRSS (anon: RssAnon), from /proc.")
print()
print("| proxy | flood | sessions up | baseline RSS | peak RSS | RSS 10 s after | delta | RSS 15 s after | fds back | anon RSS (baseline → 10 s after) | master RSS (before → after) |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    delta = (int(r["after10_kib"]) - int(r["base_kib"])) / 1024
    back = "yes" if r["fds10"] == r["base_fds"] else f"no ({r['base_fds']} → {r['fds10']})"
    print(f"| {r['proxy']} | {r['flood']} | {r['up']}/{r['conns']} | {mb(r['base_kib'])} | {mb(r['peak_kib'])} "
          f"| {mb(r['after10_kib'])} | {delta:+.1f} | {mb(r['after15_kib'])} | {back} "
          f"| {mb(r['anon_base_kib'])} → {mb(r['anon10_kib'])} "
          f"| {mb(r['master_base_kib'])} → {mb(r['master10_kib'])} |")
errors = [f"{r['proxy']} flood {r['flood']}: {r['failed']} failed ({r.get('first_error', '?')})"
          for r in rows if r["failed"] != "0"]
if errors:
    print()
    print("failed connections: " + "; ".join(errors))
PY
