#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests: initdb in a folder, a Unix socket in that folder (no TCP port is
# opened), trust authentication for the one local user, fsync off (the data is thrown away).
#   postgres.sh start DIR   starts it and prints its URL (postgresql://roster@/roster?host=DIR&port=N)
#   postgres.sh stop DIR    stops it (the caller removes DIR)
# PostgreSQL refuses to run as root; as root, the cluster runs as "nobody".
set -euo pipefail
command="${1:-}"; dir="${2:-}"
[ -n "$command" ] && [ -n "$dir" ] || { echo "usage: postgres.sh start|stop DIR" >&2; exit 2; }
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$bindir/initdb" ] || { echo "postgres.sh: no PostgreSQL server (apt-get install postgresql)" >&2; exit 1; }
as_owner=()
if [ "$(id -u)" -eq 0 ]; then as_owner=(runuser -u nobody --); fi
case "$command" in
  start)
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown nobody "$dir"
    chmod 700 "$dir"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
    "${as_owner[@]}" "$bindir/initdb" -D "$dir/data" -U roster --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
    "${as_owner[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-k $dir -p $port -c listen_addresses='' -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
      start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
    "${as_owner[@]}" "$bindir/createdb" -h "$dir" -p "$port" -U roster roster
    echo "$port" > "$dir/port"
    echo "postgresql://roster@/roster?host=$dir&port=$port"
    ;;
  stop)
    [ -d "$dir/data" ] || exit 0
    "${as_owner[@]}" "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    ;;
  *) echo "usage: postgres.sh start|stop DIR" >&2; exit 2 ;;
esac
