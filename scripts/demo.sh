#!/usr/bin/env bash
# One command for a newcomer: mailproxy serving IMAP over TLS in front of a plaintext IMAP
# server. Run `scripts/demo.sh --help` for the options.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: scripts/demo.sh [--with-dovecot] [--check] [--no-build] [--proxy mailproxy|nginx] [--auth rust|php]

Builds mailproxy (cargo build --release), makes a self-signed certificate, starts the auth
service (mailproxy-auth) and the proxy with IMAP over TLS on 127.0.0.1:10993, prints how to
connect, and stops everything on Ctrl-C.

The backend (the "legacy" plaintext IMAP server):
  BACKEND=ip:port    use that server, e.g. BACKEND=127.0.0.1:143 (an IP, not a host name)
  (no BACKEND)       start a private Dovecot on 127.0.0.1:31143 (users alice/secret and
                     bob/'p w"d', mail kept in demo-state/dovecot); same as --with-dovecot

Options:
  --with-dovecot     start the private Dovecot and use it as the backend
  --check            start everything, fetch the INBOX with curl, stop; exit 0 if it worked
  --no-build         use the binaries already built
  --proxy nginx      run the real nginx mail module instead of mailproxy (to compare)
  --auth php         use `php -S` with examples/auth.php instead of mailproxy-auth

Environment: PORT (10993), AUTH_PORT (10900), STATE (./demo-state), CARGO_TARGET_DIR,
DOVECOT_IMAP_PORT (31143), DOVECOT_POP3_PORT (31110).
EOF
}

ROOT=$(cd "$(dirname "$0")/.." && pwd)
STATE=${STATE:-$ROOT/demo-state}
PORT=${PORT:-10993}
AUTH_PORT=${AUTH_PORT:-10900}
DOVECOT_IMAP_PORT=${DOVECOT_IMAP_PORT:-31143}
DOVECOT_POP3_PORT=${DOVECOT_POP3_PORT:-31110}
RELEASE=${CARGO_TARGET_DIR:-$ROOT/target}/release

WITH_DOVECOT=0
CHECK=0
BUILD=1
PROXY=mailproxy
AUTH=rust
while [ $# -gt 0 ]; do
    case $1 in
        --with-dovecot) WITH_DOVECOT=1 ;;
        --check) CHECK=1 ;;
        --no-build) BUILD=0 ;;
        --proxy) PROXY=${2:?--proxy needs mailproxy or nginx}; shift ;;
        --auth) AUTH=${2:?--auth needs rust or php}; shift ;;
        -h | --help) usage; exit 0 ;;
        *) echo "demo.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done
case $PROXY in mailproxy | nginx) ;; *) echo "demo.sh: --proxy mailproxy|nginx" >&2; exit 2 ;; esac
case $AUTH in rust | php) ;; *) echo "demo.sh: --auth rust|php" >&2; exit 2 ;; esac
if [ -z "${BACKEND:-}" ]; then
    WITH_DOVECOT=1 # a fresh machine has no legacy server: bring our own
fi
if [ "$WITH_DOVECOT" = 1 ]; then
    BACKEND=127.0.0.1:$DOVECOT_IMAP_PORT
fi
BACKEND_HOST=${BACKEND%:*}
BACKEND_PORT=${BACKEND##*:}

say() { printf '%s\n' "demo: $*"; }

# --- children: remembered by pid, stopped in reverse order on any exit ---------------------
PIDS=()
cleanup() {
    trap - EXIT INT TERM
    local i
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        kill -TERM "${PIDS[i]}" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    [ ${#PIDS[@]} -eq 0 ] || say "stopped."
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Wait until 127.0.0.1:$1 accepts; fail if pid $2 died first.
wait_port() {
    local port=$1 pid=$2 what=$3 i
    for ((i = 0; i < 200; i++)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            say "$what exited before listening on port $port; see $STATE/" >&2
            return 1
        fi
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    say "$what did not listen on port $port within 20s" >&2
    return 1
}

# --- build ----------------------------------------------------------------------------------
if [ "$BUILD" = 1 ] && { [ "$PROXY" = mailproxy ] || [ "$AUTH" = rust ]; }; then
    say "building (cargo build --release) ..."
    (cd "$ROOT" && cargo build --release -p mailproxy -p mailproxy-auth)
fi

mkdir -p "$STATE"

# --- certificate ----------------------------------------------------------------------------
if [ ! -s "$STATE/cert.pem" ] || [ ! -s "$STATE/key.pem" ]; then
    say "making a self-signed certificate for localhost/127.0.0.1 ..."
    openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj /CN=localhost \
        -addext subjectAltName=IP:127.0.0.1,DNS:localhost \
        -keyout "$STATE/key.pem" -out "$STATE/cert.pem" 2>/dev/null
fi

# --- backend --------------------------------------------------------------------------------
if [ "$WITH_DOVECOT" = 1 ]; then
    python3 "$ROOT/tests/real/dovecot/dovecot.py" --dir "$STATE/dovecot" --seed \
        --imap-port "$DOVECOT_IMAP_PORT" --pop3-port "$DOVECOT_POP3_PORT" \
        >"$STATE/dovecot.out" 2>&1 &
    PIDS+=($!)
    wait_port "$DOVECOT_POP3_PORT" $! "dovecot" || { cat "$STATE/dovecot.out" >&2; exit 1; }
    until grep -q "dovecot ready" "$STATE/dovecot.out"; do sleep 0.1; done # seeded too
    say "private Dovecot (plaintext IMAP) on $BACKEND, users alice/secret and bob/'p w\"d'"
fi

# --- auth service ---------------------------------------------------------------------------
if [ "$AUTH" = rust ]; then
    cat >"$STATE/auth.toml" <<EOF
# Written by scripts/demo.sh: send every login to the one backend.
listen = "127.0.0.1:$AUTH_PORT"

[backend]
imap = "$BACKEND"
EOF
    "$RELEASE/mailproxy-auth" -c "$STATE/auth.toml" >"$STATE/auth.log" 2>&1 &
else
    script=$ROOT/examples/auth.php
    [ -f "$script" ] || script=$ROOT/tests/real/stand_in_auth.php
    BACKEND_HOST=$BACKEND_HOST BACKEND_IMAP_PORT=$BACKEND_PORT \
        php -S "127.0.0.1:$AUTH_PORT" "$script" >"$STATE/auth.log" 2>&1 &
fi
PIDS+=($!)
wait_port "$AUTH_PORT" $! "auth service" || { cat "$STATE/auth.log" >&2; exit 1; }

# --- the proxy ------------------------------------------------------------------------------
sed -e "s|@STATE@|$STATE|g" -e "s|@PORT@|$PORT|g" -e "s|@AUTH_PORT@|$AUTH_PORT|g" \
    "$ROOT/examples/demo/mailproxy.conf" >"$STATE/mailproxy.conf"
if [ "$PROXY" = nginx ]; then
    nginx -p "$STATE/" -e "$STATE/stderr.log" -c "$STATE/mailproxy.conf" >"$STATE/proxy.out" 2>&1 &
else
    "$RELEASE/mailproxy" -c "$STATE/mailproxy.conf" >"$STATE/proxy.out" 2>&1 &
fi
PIDS+=($!)
wait_port "$PORT" $! "$PROXY" || { cat "$STATE/proxy.out" "$STATE/error.log" >&2 2>/dev/null; exit 1; }

if [ "$CHECK" = 1 ]; then
    say "checking with curl ..."
    curl -sS --max-time 20 --cacert "$STATE/cert.pem" "imaps://127.0.0.1:$PORT/" -u alice:secret
    if [ "$WITH_DOVECOT" = 1 ]; then
        curl -sS --max-time 20 --cacert "$STATE/cert.pem" \
            "imaps://127.0.0.1:$PORT/INBOX;UID=1" -u alice:secret | grep -q "through mailproxy"
    fi
    say "check passed: $PROXY on 127.0.0.1:$PORT -> $BACKEND"
    exit 0
fi

cat <<EOF

  $PROXY is listening on 127.0.0.1:$PORT (IMAP over TLS) and logs in to $BACKEND
  (plaintext IMAP) for you. Try:

    curl -k imaps://127.0.0.1:$PORT/ -u alice:secret              # list folders
    curl -k 'imaps://127.0.0.1:$PORT/INBOX;UID=1' -u alice:secret # read message 1
    openssl s_client -quiet -connect 127.0.0.1:$PORT               # talk IMAP by hand

  Logs: $STATE/error.log (proxy), $STATE/auth.log (auth service)
  Press Ctrl-C to stop.

EOF
# Run until Ctrl-C, or until one of the children dies (then stop the others).
set +e
wait -n "${PIDS[@]}"
status=$?
say "a process exited (status $status); stopping the rest. See $STATE/ for logs." >&2
exit 1
