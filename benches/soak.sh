#!/usr/bin/env bash
# A soak of mailproxy: mixed IMAP/POP3/SMTP load through the proxy for --minutes (default 30)
# with a reload every minute and injected faults (worker SIGKILL, auth server down, Dovecot
# restart), then a markdown report. Needs root, dovecot, postfix and a release build:
#
#   cargo build --release --workspace
#   benches/soak.sh [--minutes 30] [--report docs/soak.md] [--imap 12 --pop3 6 --smtp 6]
#
# The work is done by benches/soak.py (see its docstring); this wrapper notes what else is
# running on the machine (for the report) and makes sure nothing outlives the run.
set -euo pipefail
cd "$(dirname "$0")/.."

# The busiest other processes at the start: a soak's numbers depend on them.
machine=$(ps -eo pcpu=,comm= --sort=-pcpu | awk -v me=$$ '$1 >= 5 {printf "%s%s (%s%% CPU)", sep, $2, $1; sep=", "}')
machine="${machine:-nothing else above 5% CPU} at the start of the run; load average $(cut -d' ' -f1-3 /proc/loadavg)"

python3 benches/soak.py --machine "$machine" "$@" &
driver=$!
# soak.py stops everything it started on SIGTERM/SIGINT (try/finally); pass those on.
trap 'kill -TERM "$driver" 2>/dev/null || true; wait "$driver" || true' INT TERM
trap 'kill -TERM "$driver" 2>/dev/null || true' EXIT
wait "$driver"
