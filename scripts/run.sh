#!/usr/bin/env bash
# Starts Roster (release build) and nginx in the foreground; Ctrl-C stops both.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
export ROSTER_DATA="${ROSTER_DATA:-data}"
export ROSTER_LISTEN="${ROSTER_LISTEN:-127.0.0.1:9009}"
http_port="${ROSTER_HTTP_PORT:-8080}"
prefix="$repo/run/nginx"
bin="$repo/.build/release/roster"

"$repo/scripts/nginx-prefix.sh" "$prefix" "$http_port" "$ROSTER_LISTEN"
nginx -t -q -p "$prefix/" -c "$prefix/nginx.conf"

"$bin" migrate
"$bin" bootstrap
# A small demo database on the first start (ROSTER_DEMO=0 skips it).
if [ "${ROSTER_DEMO:-1}" != 0 ] && [ -z "$("$bin" database list)" ]; then
  echo "roster: adding a demo database (2,000 profiles; set ROSTER_DEMO=0 to skip)"
  "$bin" seed --database Demo --profiles 2000 | tail -1
fi

app_pid=""; nginx_pid=""
stop() {
  trap - INT TERM EXIT
  [ -n "$nginx_pid" ] && kill -QUIT "$nginx_pid" 2>/dev/null || true
  [ -n "$app_pid" ] && kill -TERM "$app_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  echo "Roster and nginx stopped."
}
trap stop INT TERM EXIT

# The supervisor runs `roster serve` and starts it again within a second if it ever dies (its log says so).
"$bin" supervise &
app_pid=$!
(cd "$prefix" && exec nginx -p "$prefix/" -c "$prefix/nginx.conf") &
nginx_pid=$!

for _ in $(seq 1 50); do
  curl -fsS -o /dev/null "http://127.0.0.1:${http_port}/login" 2>/dev/null && break
  sleep 0.2
done
echo
echo "Roster is running on http://127.0.0.1:${http_port}/  (Ctrl-C stops it)"
echo "Sign in with the admin account printed above the first time (or ROSTER_ADMIN_EMAIL / ROSTER_ADMIN_PASSWORD)."
echo "Data: $ROSTER_DATA/roster.sqlite   Logs: $prefix/logs/"
wait -n "$app_pid" "$nginx_pid" || true
