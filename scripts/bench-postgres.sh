#!/usr/bin/env bash
# `make bench`, PostgreSQL part: Roster on a throwaway PostgreSQL cluster (Unix socket, fsync off for both sides)
# against the same work written by hand and run by psql in the same run, timed by psql's \timing; then the profile
# page's throughput with one and with two app processes behind one nginx.
# Repeatable: a fresh cluster, BENCH_PG_PROFILES profiles (default 200,000), BENCH_SECONDS per wrk run (default 10).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
bin="$repo/.build/release/roster"
seconds="${BENCH_SECONDS:-10}"
connections=32
profiles="${BENCH_PG_PROFILES:-200000}"
work="$(mktemp -d /tmp/roster-bench-pg.XXXXXX)"; chmod 755 "$work"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  bash "$repo/scripts/postgres.sh" stop "$work/pg"
  rm -rf "$work"
}
trap cleanup EXIT
url=$(bash "$repo/scripts/postgres.sh" start "$work/pg")
export ROSTER_DATABASE_URL="$url" ROSTER_DATA="$work/host-a" ROSTER_FILES="$work/files" ROSTER_TEMPLATES="$repo/Templates"
export ROSTER_ADMIN_EMAIL="bench@example.com" ROSTER_ADMIN_PASSWORD="bench password 1"
q() { psql -X -At -v ON_ERROR_STOP=1 "$url" -c "$1"; }
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
verdict() { if [ "$1" = 1 ]; then echo "PASS"; else echo "MISS"; fi; }
roster_ms() { ROSTER_TIMING=1 "$bin" "$@" 2>&1 >/dev/null | awk '/^roster-timing-ms/ { print $2 }'; }
# Statements in one transaction, timed by psql (the sum of their \timing lines); `rollback` leaves the data as it was.
raw_ms() { # commit|rollback STATEMENT...
  local end="$1"; shift
  { echo '\timing on'; echo 'BEGIN;'; printf '%s;\n' "$@"; echo "$end;"; } | psql -X -q -v ON_ERROR_STOP=1 "$url" 2>&1 \
    | awk '/^Time:/ { t += $2 } END { printf "%.1f", t }'
}

"$bin" bootstrap >/dev/null
cat > "$work/structure.json" <<JSON
{"format": "roster-database-structure/1", "name": "Bench", "custom_fields": [{"name": "city_code", "type": "line"}]}
JSON
dbid=$("$bin" database create --structure "$work/structure.json")
rid=$("$bin" resource create --name "Bench news" --channels email,sms)
nowts=$(date +%s)
psql -X -q -v ON_ERROR_STOP=1 "$url" >/dev/null <<SQL
INSERT INTO database_resources (database_id, resource_id) VALUES ($dbid, $rid);
INSERT INTO profiles_$dbid (profile_id, email, status, range_bucket, s_fname, created_at, updated_at, last_interaction_at)
SELECT substr(md5(x::text), 1, 24), 'user' || x || '@example.com', x % 7, (hashtext(x::text) & 2147483647) % 10000,
       'Name' || (x % 1000), 1700000000 + x, 1700000000 + x, 1700000000 + x FROM generate_series(1, $profiles) x;
INSERT INTO subscriptions_$dbid (profile, resource_id, channel, contact, status, created_at, updated_at)
  SELECT id, $rid, 'email', email, id % 7, 1, 1 FROM profiles_$dbid WHERE id % 3 = 0;
INSERT INTO history_$dbid (profile, at, type, details)
  SELECT id, $nowts - (id % 90) * 86400 - 43200,
         CASE id % 4 WHEN 0 THEN 'opened' WHEN 1 THEN 'sent' WHEN 2 THEN 'clicked' ELSE 'goal' END, '{}' FROM profiles_$dbid;
VACUUM ANALYZE;
SQL

echo
echo "PostgreSQL — $(psql -X -At "$url" -c 'SHOW server_version'), $(nproc) cores, $profiles profiles; raw: psql \\timing"

# ---------------------------------------------------------------------------------------------------------
# Segments: four count previews through `roster segment count` against the hand-written SQL (median of 3 each).
since=$(( (nowts / 86400 - 30) * 86400 ))
declare -a names selections rawsql
names+=("indexed: global status is subscribed");     selections+=('{"rules":{"join":"and","rules":[{"subject":"status","op":"in","value":"subscribed"}]}}')
rawsql+=("SELECT COUNT(*) FROM profiles_$dbid WHERE status IN (0)")
names+=("unindexed: first name equals Name42");      selections+=('{"rules":{"join":"and","rules":[{"subject":"field:_fname","op":"eq","value":"Name42"}]}}')
rawsql+=("SELECT COUNT(*) FROM profiles_$dbid WHERE s_fname = 'Name42'")
names+=("(status OR name) AND email subscription");  selections+=('{"rules":{"join":"and","rules":[{"join":"or","rules":[{"subject":"status","op":"in","value":"subscribed"},{"subject":"field:_fname","op":"eq","value":"Name7"}]},{"subject":"subscription:'"$rid"':email","op":"has","value":"subscribed"}]}}')
rawsql+=("SELECT COUNT(*) FROM profiles_$dbid p WHERE (p.status IN (0) OR p.s_fname = 'Name7') AND EXISTS (SELECT 1 FROM subscriptions_$dbid s WHERE s.profile = p.id AND s.resource_id = $rid AND s.deleted = 0 AND s.channel = 'email' AND s.status IN (0))")
names+=("history: opened in the last 30 days");      selections+=('{"rules":{"join":"and","rules":[{"subject":"event","op":"had","value":"opened","value2":"30"}]}}')
rawsql+=("SELECT COUNT(*) FROM profiles_$dbid p WHERE EXISTS (SELECT 1 FROM history_$dbid h WHERE h.profile = p.id AND h.at >= $since AND h.type = 'opened')")
echo
echo "Segments on PostgreSQL — count preview (median of 3, timed inside each process)"
printf "%-44s %10s %10s %7s %10s\n" "selection" "roster ms" "raw ms" "ratio" "count"
seg_ok=1
for i in "${!names[@]}"; do
  r=(); w=()
  for _ in 1 2 3; do
    r+=("$(roster_ms segment count --database "$dbid" --selection "${selections[$i]}")")
    w+=("$(raw_ms rollback "${rawsql[$i]}")")
  done
  rm_=$(printf '%s\n' "${r[@]}" | median); wm_=$(printf '%s\n' "${w[@]}" | median)
  got=$("$bin" segment count --database "$dbid" --selection "${selections[$i]}" | cut -f3)
  want=$(q "${rawsql[$i]}")
  printf "%-44s %10s %10s %7s %10s\n" "${names[$i]}" "$rm_" "$wm_" "$(ratio "$rm_" "$wm_")" "$got"
  [ "$got" = "$want" ] || { echo "  count differs from the hand-written SQL ($want)"; seg_ok=0; }
  awk -v a="$rm_" -v b="$wm_" 'BEGIN{exit !(a <= 1.5*b)}' || seg_ok=0
done
echo "segments bar on PostgreSQL (each <= 1.5x its SQL, same count): $(verdict "$seg_ok")"

# ---------------------------------------------------------------------------------------------------------
# Bulk update through `roster bulk` (frozen targets, chunks, history, change log) against the same rows changed by
# hand-written SQL (with history rows and cascades), run first on the same data and rolled back.
bulkfield=$(q "SELECT id FROM custom_fields WHERE database_id = $dbid AND name = 'city_code'")
cutoff=$(python3 -c "import datetime; d=datetime.date.today().replace(day=1); m=d.month-1 or 12; y=d.year-(1 if d.month==1 else 0); print(int(datetime.datetime(y,m,1,tzinfo=datetime.timezone.utc).timestamp()))")
half='{"rules":{"join":"and","rules":[]},"range_from":0,"range_to":50}'
tenth='{"rules":{"join":"and","rules":[]},"range_from":0,"range_to":10}'
epoch="CAST(extract(epoch FROM now()) AS bigint)"
"$bin" bulk --database "$dbid" --selection "$half" --action '{"action":"update_fields","fields":[{"field":"city_code","value":"MOW"}]}' >/dev/null
r1=$(raw_ms rollback \
  "INSERT INTO history_$dbid (profile, at, type, details) SELECT id, $epoch, 'field_changed', '{\"fields\":[\"city_code\"]}' FROM profiles_$dbid WHERE range_bucket < 5000 AND c_$bulkfield IS DISTINCT FROM 'SPB'" \
  "UPDATE profiles_$dbid SET c_$bulkfield = 'SPB', updated_at = $epoch, version = version + 1 WHERE range_bucket < 5000 AND c_$bulkfield IS DISTINCT FROM 'SPB'")
b1=$(ROSTER_TIMING=1 "$bin" bulk --database "$dbid" --selection "$half" --action '{"action":"update_fields","fields":[{"field":"city_code","value":"SPB"}]}' 2>&1 | awk '/^roster-timing-ms/ { print $2 }')
targets="SELECT s.profile FROM subscriptions_$dbid s WHERE s.profile IN (SELECT id FROM profiles_$dbid WHERE range_bucket < 5000) AND s.resource_id = $rid AND s.channel = 'email' AND s.deleted = 0 AND s.status <> 1"
r2=$(raw_ms rollback \
  "INSERT INTO history_$dbid (profile, at, type, details) SELECT s.profile, $epoch, 'unsubscribed', '{}' FROM subscriptions_$dbid s WHERE s.profile IN (SELECT id FROM profiles_$dbid WHERE range_bucket < 5000) AND s.resource_id = $rid AND s.channel = 'email' AND s.deleted = 0 AND s.status <> 1" \
  "UPDATE profiles_$dbid SET engaged_at = COALESCE(engaged_at, $epoch) WHERE id IN ($targets)" \
  "UPDATE subscriptions_$dbid SET status = 1, updated_at = $epoch WHERE profile IN (SELECT id FROM profiles_$dbid WHERE range_bucket < 5000) AND resource_id = $rid AND channel = 'email' AND deleted = 0 AND status <> 1")
b2=$(ROSTER_TIMING=1 "$bin" bulk --database "$dbid" --selection "$half" --action '{"action":"subscription_status","resource_id":'"$rid"',"channel":"email","status":"unsubscribed","include_unsafe":false}' 2>&1 | awk '/^roster-timing-ms/ { print $2 }')
# The raw deletion archives what it deletes as Roster does (#17: kept for undo), then deletes.
inactive="range_bucket < 1000 AND (last_interaction_at IS NULL OR last_interaction_at < $cutoff)"
agg() { echo "(SELECT COALESCE(json_agg(row_to_json($2)), '[]'::json) FROM $1 $2 WHERE $3)"; }
r3=$(raw_ms rollback \
  "INSERT INTO deleted_profiles (task_id, database_id, row_id, profile_id, email, deleted_at, data) SELECT 0, $dbid, p.id, p.profile_id, p.email, $epoch, CAST(json_build_object('profile', row_to_json(p), 'subscriptions', $(agg "subscriptions_$dbid" s "s.profile = p.id"), 'history', $(agg "history_$dbid" h "h.profile = p.id"), 'members', $(agg "segment_members_$dbid" m "m.profile = p.id"), 'relations', $(agg "relations_$dbid" r "r.profile = p.id OR r.related = p.id")) AS text) FROM profiles_$dbid p WHERE $inactive" \
  "DELETE FROM profiles_$dbid WHERE $inactive")
b3=$(ROSTER_TIMING=1 "$bin" bulk --database "$dbid" --selection "$tenth" --action '{"action":"delete_inactive"}' 2>&1 | awk '/^roster-timing-ms/ { print $2 }')
echo
echo "Bulk update on PostgreSQL — $profiles profiles (one run each; change log on)"
printf "%-52s %10s %10s %7s\n" "what" "roster ms" "raw ms" "ratio"
printf "%-52s %10s %10s %7s\n" "field update, range 0–50% (about half)" "$b1" "$r1" "$(ratio "$b1" "$r1")"
printf "%-52s %10s %10s %7s\n" "subscription status → unsubscribed, range 0–50%" "$b2" "$r2" "$(ratio "$b2" "$r2")"
printf "%-52s %10s %10s %7s\n" "delete inactive, range 0–10% (archive, cascades)" "$b3" "$r3" "$(ratio "$b3" "$r3")"
echo "profiles left: $(q "SELECT COUNT(*) FROM profiles_$dbid"); change-log rows: $(q "SELECT COUNT(*) FROM task_changes")"
bulk_ok=$(awk -v a="$b1" -v b="$r1" -v c="$b2" -v d="$r2" -v e="$b3" -v f="$r3" 'BEGIN{print (a<=2.5*b && c<=2.5*d && e<=2.5*f)}')
echo "bulk bars on PostgreSQL (each <= 2.5x raw): $(verdict "$bulk_ok")"

# ---------------------------------------------------------------------------------------------------------
# The app hosts: host A behind nginx; update_batch of 10,000 profiles against the same upserts by hand (on a twin
# database, committed, so both sides see the same state from run to run); then the profile page with one and with
# two app processes (host A, then hosts A and B behind one nginx upstream).
start_host() { # NAME PORT
  ROSTER_DATA="$work/$1" ROSTER_LISTEN="127.0.0.1:$2" ROSTER_HOST_ID="$1" "$bin" serve >>"$work/$1.log" 2>&1 &
  pids+=($!)
}
start_nginx() { # NAME PORT APP...
  local name="$1" port="$2"; shift 2
  "$repo/scripts/nginx-prefix.sh" "$work/$name" "$port" "$@"
  sed -i 's|access_log logs/access.log;|access_log off;|' "$work/$name/nginx.conf"
  (cd "$work/$name" && exec nginx -p "$work/$name/" -c "$work/$name/nginx.conf") &
  pids+=($!)
  for _ in $(seq 1 100); do curl -fsS -o /dev/null "http://127.0.0.1:$port/login" 2>/dev/null && break; sleep 0.1; done
}
to_ms() { awk -v v="$1" 'BEGIN { if (v ~ /us$/) { sub(/us$/,"",v); print v/1000 } else if (v ~ /ms$/) { sub(/ms$/,"",v); print v+0 } else if (v ~ /s$/) { sub(/s$/,"",v); print v*1000 } else print v }'; }
run_wrk() { # URL [HEADER]
  local out
  if [ $# -ge 2 ]; then out=$(wrk -t2 -c$connections -d"${seconds}s" --latency -H "$2" "$1"); else out=$(wrk -t2 -c$connections -d"${seconds}s" --latency "$1"); fi
  echo "$(echo "$out" | awk '/Requests\/sec/ {print $2}') $(to_ms "$(echo "$out" | awk '$1 == "50%" {print $2}')") $(to_ms "$(echo "$out" | awk '$1 == "99%" {print $2}')") $(echo "$out" | awk '/Non-2xx/ {print $5}')"
}
a_port=$(free_port); b_port=$(free_port); one_port=$(free_port); two_port=$(free_port)
start_host host-a "$a_port"
start_nginx nginx-one "$one_port" "127.0.0.1:$a_port"
base="http://127.0.0.1:$one_port"

cat > "$work/api.json" <<JSON
{"format": "roster-database-structure/1", "name": "API bench", "custom_fields": []}
JSON
sed 's/API bench/API bench (raw twin)/' "$work/api.json" > "$work/raw.json"
apidb=$("$bin" database create --structure "$work/api.json")
rawdb=$("$bin" database create --structure "$work/raw.json")
for d in "$apidb" "$rawdb"; do
  q "INSERT INTO database_resources (database_id, resource_id) VALUES ($d, $rid)" >/dev/null
  q "INSERT INTO profiles_$d (profile_id, email, status, range_bucket, created_at, updated_at, last_interaction_at)
     SELECT substr(md5('$d-' || x), 1, 24), 'api' || x || '@example.com', 0, x % 10000, 1, 1, 1 FROM generate_series(1, 10000) x" >/dev/null
done
q "ANALYZE" >/dev/null
apitoken=$("$bin" token create --name bench --databases "$apidb")
python3 - "$work" "$apitoken" "$apidb" "$rid" "$rawdb" <<'PY'
import json, sys
work, token, db, rid, raw = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
items = [{"email": f"api{i}@example.com", "_fname": f"Name{i}", "subscriptions": [{"resource_id": rid, "channel": "email", "email": f"api{i}@example.com", "status": "subscribed"}]} for i in range(1, 10001)]
json.dump({"token": token, "db_id": db, "data": items}, open(f"{work}/batch.json", "w"))
with open(f"{work}/raw-api.sql", "w") as f:
    f.write("\\timing on\nBEGIN;\n")
    for i in range(1, 10001):
        e = f"api{i}@example.com"
        f.write(f"UPDATE profiles_{raw} SET s_fname = 'Name{i}', updated_at = 1, version = version + 1 WHERE email = '{e}' AND s_fname IS DISTINCT FROM 'Name{i}';\n")
        f.write(f"UPDATE subscriptions_{raw} SET status = 0, updated_at = 1 WHERE profile = (SELECT id FROM profiles_{raw} WHERE email = '{e}') AND resource_id = {rid} AND channel = 'email' AND contact = '{e}';\n")
        f.write(f"INSERT INTO subscriptions_{raw} (profile, resource_id, channel, contact, status, created_at, updated_at) SELECT id, {rid}, 'email', email, 0, 1, 1 FROM profiles_{raw} p WHERE email = '{e}' AND NOT EXISTS (SELECT 1 FROM subscriptions_{raw} s WHERE s.profile = p.id AND s.resource_id = {rid} AND s.channel = 'email' AND s.contact = p.email);\n")
    f.write("COMMIT;\n")
PY
jt=(); rt=()
for _ in 1 2 3 4 5; do
  jt+=("$(curl -s -o "$work/api.out" -w '%{time_total}' -H "Content-Type: application/json" --data-binary "@$work/batch.json" "$base/api/v1.1/profiles/update_batch" | awk '{ printf "%.1f", $1 * 1000 }')")
  rt+=("$(psql -X -q -v ON_ERROR_STOP=1 "$url" < "$work/raw-api.sql" 2>&1 | awk '/^Time:/ { t += $2 } END { printf "%.1f", t }')")
done
grep -q '"result":\[{"error":0' "$work/api.out" || echo "bench: update_batch failed: $(head -c 300 "$work/api.out")"
jm=$(printf '%s\n' "${jt[@]}" | median); rm_api=$(printf '%s\n' "${rt[@]}" | median)
echo
echo "Batch API on PostgreSQL — update_batch, 10,000 profiles with one subscription each, through nginx (p50 of 5)"
printf "%-52s %10s %7s\n" "what" "p50 ms" "ratio"
printf "%-52s %10s %7s\n" "update_batch JSON" "$jm" "$(ratio "$jm" "$rm_api")"
printf "%-52s %10s %7s\n" "raw: the same 10,000 upserts in psql (one transaction)" "$rm_api" "1.00"
echo "subscriptions: roster $(q "SELECT COUNT(*) FROM subscriptions_$apidb"), raw $(q "SELECT COUNT(*) FROM subscriptions_$rawdb")"
echo "api bar on PostgreSQL (p50 <= 2.5x raw): $(verdict "$(awk -v a="$jm" -v r="$rm_api" 'BEGIN{print (a<=2.5*r)}')")"

# Sign in once through nginx; the session is in PostgreSQL, so it works on either host.
jar="$work/cookies"
csrf=$(curl -fsS -c "$jar" -b "$jar" "$base/login" | sed -n 's/.*name="csrf_token" value="\([^"]*\)".*/\1/p' | head -1)
curl -fsS -o /dev/null -c "$jar" -b "$jar" --data-urlencode "csrf_token=$csrf" \
  --data-urlencode "email=$ROSTER_ADMIN_EMAIL" --data-urlencode "password=$ROSTER_ADMIN_PASSWORD" "$base/login"
cookie="Cookie: roster_session=$(awk '$6 == "roster_session" {print $7}' "$jar")"
pid_profile=$(q "SELECT profile_id FROM profiles_$dbid ORDER BY id LIMIT 1 OFFSET $((profiles / 3))")
page="/databases/$dbid/profiles/$pid_profile"
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "$cookie" "$base$page")" = 200 ] || { echo "bench: $page is not 200" >&2; exit 1; }
wrk -t2 -c$connections -d2s -H "$cookie" "$base$page" >/dev/null   # warm-up
read -r s_rps _ _ _ < <(run_wrk "$base/static/app.css")
read -r o_rps o_p50 o_p99 o_err < <(run_wrk "$base$page" "$cookie")
start_host host-b "$b_port"
start_nginx nginx-two "$two_port" "127.0.0.1:$a_port" "127.0.0.1:$b_port"
wrk -t2 -c$connections -d2s -H "$cookie" "http://127.0.0.1:$two_port$page" >/dev/null
read -r t_rps t_p50 t_p99 t_err < <(run_wrk "http://127.0.0.1:$two_port$page" "$cookie")
served_b=$(grep -c . "$work/host-b.log" || true)
echo
echo "Profile page on PostgreSQL, through nginx (wrk 2 threads × $connections connections, ${seconds}s; same machine)"
printf "%-44s %10s %9s %9s %7s\n" "what" "req/s" "p50 ms" "p99 ms" "non-2xx"
printf "%-44s %10.0f %9s %9s %7s\n" "baseline: nginx static file" "$s_rps" "-" "-" "-"
printf "%-44s %10.0f %9.2f %9.2f %7s\n" "profile page, one app process" "$o_rps" "$o_p50" "$o_p99" "${o_err:-0}"
printf "%-44s %10.0f %9.2f %9.2f %7s\n" "profile page, two app processes" "$t_rps" "$t_p50" "$t_p99" "${t_err:-0}"
echo "two processes / one: $(ratio "$t_rps" "$o_rps")x (one machine: the app hosts, nginx and PostgreSQL share its $(nproc) cores)"
