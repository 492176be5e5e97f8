#!/usr/bin/env bash
# Checks the production files in deploy/ without touching the system they are meant for: everything is copied
# into a temporary folder (removed on exit) with its paths pointed there.
#   1. deploy/roster.service: `systemd-analyze verify` in a scratch root holding a stand-in for the binary,
#      the settings the operations guide relies on, and `systemd-analyze security` as a floor.
#   2. deploy/nginx-roster.conf: `nginx -t` inside a copy of Debian's http {} block with a self-signed
#      certificate, then a live run on 127.0.0.1 (redirect, headers, health check access, body limits,
#      login rate limit). No app runs: a request that reaches it answers 502.
#   3. deploy/logrotate-roster: `logrotate -d` beside Debian's nginx entry, if logrotate is installed.
# Usage: scripts/verify-deploy.sh    (prints "deploy: ok" at the end; any failure exits non-zero)
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
deploy="$repo/deploy"
unit_src="$deploy/roster.service"
site_src="$deploy/nginx-roster.conf"
logrotate_src="$deploy/logrotate-roster"

tmp="$(mktemp -d)"
nginx_pid=""
cleanup() {
  if [ -n "$nginx_pid" ]; then kill -QUIT "$nginx_pid" 2>/dev/null || true; wait "$nginx_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

fail() { echo "deploy: FAILED: $*" >&2; exit 1; }
say() { echo "deploy: $*"; }
need() { command -v "$1" >/dev/null 2>&1 || fail "$1 is needed for this check but is not installed ($2)"; }

for f in "$unit_src" "$site_src" "$logrotate_src"; do [ -f "$f" ] || fail "missing $f"; done
long="$(awk 'length > 119 { print FILENAME ":" FNR " is " length " characters" }' \
  "$unit_src" "$site_src" "$logrotate_src" "$0")"
[ -z "$long" ] || fail "lines of 120 characters or more:"$'\n'"$long"

# ---------------------------------------------------------------------------------------------------------------
# 1. The systemd unit
need systemd-analyze "Debian package: systemd"

# One setting's value as the unit states it (the last assignment wins, as in systemd).
unit_value() { sed -n "s/^$1=//p" "$unit_src" | tail -n 1; }
expect_unit() {
  local got; got="$(unit_value "$1")"
  [ "$got" = "$2" ] || fail "roster.service: $1 is '${got}', expected '$2'"
}
expect_env() {
  grep -qx "Environment=$1" "$unit_src" || fail "roster.service: expected the line Environment=$1"
}
expect_unit Type exec
expect_unit User roster
expect_unit Group roster
expect_unit SupplementaryGroups www-data
expect_unit ExecStart "/opt/roster/bin/roster serve"
expect_unit Restart always
expect_unit StartLimitIntervalSec 0
expect_unit ProtectSystem strict
expect_unit PrivateTmp yes
expect_unit NoNewPrivileges yes
expect_unit WorkingDirectory /var/lib/roster
expect_unit ReadWritePaths "/var/lib/roster /var/backups/roster"
expect_env ROSTER_DATA=/var/lib/roster
expect_env ROSTER_TEMPLATES=/opt/roster/Templates
expect_env ROSTER_SECURE_COOKIES=1
expect_env ROSTER_BACKUP_DIR=/var/backups/roster
[ "$(grep -c '^ReadWritePaths=' "$unit_src")" = 1 ] || fail "roster.service: more than one ReadWritePaths= line"
for key in StateDirectory CacheDirectory LogsDirectory RuntimeDirectory ReadWriteDirectories DynamicUser; do
  ! grep -q "^$key=" "$unit_src" || fail "roster.service: $key= would add a writable path or change the user"
done

root="$tmp/root"
mkdir -p "$root/etc/systemd/system" "$root/usr/lib/systemd"
[ -d /usr/lib/systemd/system ] || fail "/usr/lib/systemd/system is missing: no targets to verify the unit against"
# The targets the unit is ordered against (sysinit, basic, network, multi-user...) must exist in the root too.
cp -a /usr/lib/systemd/system "$root/usr/lib/systemd/"
exec_path="$(unit_value ExecStart)"; exec_path="${exec_path%% *}"
mkdir -p "$root$(dirname "$exec_path")"
printf '#!/bin/sh\n# stand-in for the Roster binary\nexit 0\n' > "$root$exec_path"
chmod 755 "$root$exec_path"

if systemd-analyze --help 2>/dev/null | grep -q -- '--root='; then
  cp "$unit_src" "$root/etc/systemd/system/roster.service"
  verify=(systemd-analyze verify --man=no --root="$root" roster.service)
  security=(systemd-analyze security --offline=yes --root="$root" --threshold=40 roster.service)
else
  # An older systemd: a copy of the unit whose binary is the stand-in, verified against the host's targets.
  sed "s#^ExecStart=$exec_path#ExecStart=$root$exec_path#" "$unit_src" > "$tmp/roster.service"
  verify=(systemd-analyze verify --man=no "$tmp/roster.service")
  security=()
fi
# verify prints unknown keys and bad values as warnings and still exits 0: any output is a failure.
if ! out="$("${verify[@]}" 2>&1)" || [ -n "$out" ]; then
  fail "systemd-analyze verify rejected deploy/roster.service:"$'\n'"$out"
fi
# The negative control: the same check must notice a missing binary, or it proves nothing.
mv "$root$exec_path" "$root$exec_path.away"
if "${verify[@]}" >/dev/null 2>&1; then
  fail "systemd-analyze verify did not notice a missing ExecStart binary; the check above proves nothing"
fi
mv "$root$exec_path.away" "$root$exec_path"
# 4.0 ("OK") is the ceiling: losing a sandbox setting by accident raises the exposure above it.
if [ ${#security[@]} -gt 0 ]; then
  status=0; out="$("${security[@]}" 2>&1)" || status=$?
  exposure="$(printf '%s\n' "$out" | sed -n 's/^→ Overall exposure level for roster.service: \([0-9.]*\).*/\1/p')"
  [ -n "$exposure" ] || fail "systemd-analyze security gave no exposure level:"$'\n'"$out"
  [ "$status" = 0 ] || fail "the unit's sandbox got weaker: systemd-analyze security rates it $exposure, above 4.0"
  say "roster.service verified (systemd-analyze security: exposure $exposure)"
else
  say "roster.service verified"
fi

# ---------------------------------------------------------------------------------------------------------------
# 2. The nginx site
need nginx "Debian package: nginx (or nginx-light)"
need openssl "Debian package: openssl"

prefix="$tmp/nginx"
mkdir -p "$prefix/logs" "$prefix/tmp" "$prefix/cert" "$prefix/Public" "$prefix/sites-enabled"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=roster.example.com \
  -keyout "$prefix/cert/privkey.pem" -out "$prefix/cert/fullchain.pem" >/dev/null 2>&1 \
  || fail "openssl could not make a self-signed certificate"
printf 'static ok\n' > "$prefix/Public/verify.txt"
printf '<!doctype html><title>verify</title><p>%s</p>\n' "$(head -c 200 /dev/zero | tr '\0' x)" \
  > "$prefix/Public/verify.html"
printf 'User-agent: *\n' > "$prefix/Public/robots.txt"

# Every absolute path of the site, pointed into the prefix; nothing may be left pointing at the system.
sed -e "s#/etc/letsencrypt/live/roster.example.com/#$prefix/cert/#g" \
    -e "s#/var/log/nginx/roster/#$prefix/logs/#g" \
    -e "s#/opt/roster/Public/#$prefix/Public/#g" \
    -e "s#unix:/var/lib/roster/roster.sock#unix:$prefix/roster.sock#g" \
    "$site_src" > "$tmp/site.conf"
left="$(grep -nE '(^|[ :])/(etc|var|opt|run|usr|srv|home)/' "$tmp/site.conf" | grep -v '^\s*[0-9]*:\s*#' || true)"
[ -z "$left" ] || fail "the test does not know these paths of nginx-roster.conf (add them to the sed):"$'\n'"$left"

# Debian 12's /etc/nginx/nginx.conf, with its paths in the prefix: the site must load inside exactly this.
write_nginx_conf() {
  {
    # As root, nginx would run its workers as nobody, who may not enter the temporary folder.
    if [ "$(id -u)" -eq 0 ]; then echo "user root;"; fi
    cat <<EOF
worker_processes 2;
pid $prefix/nginx.pid;
error_log $prefix/logs/error.log warn;
events { worker_connections 256; }
http {
    sendfile on;
    tcp_nopush on;
    types_hash_max_size 2048;
    $( [ -f /etc/nginx/mime.types ] && echo "include /etc/nginx/mime.types;" || echo "types { text/plain txt; }" )
    default_type application/octet-stream;
    ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3;
    ssl_prefer_server_ciphers on;
    access_log $prefix/logs/access.log;
    gzip on;
    client_body_temp_path $prefix/tmp/client_body;
    fastcgi_temp_path $prefix/tmp/fastcgi;
    proxy_temp_path $prefix/tmp/proxy;
    uwsgi_temp_path $prefix/tmp/uwsgi;
    scgi_temp_path $prefix/tmp/scgi;
    include $prefix/sites-enabled/*;
}
EOF
  } > "$prefix/nginx.conf"
}
write_nginx_conf
cp "$tmp/site.conf" "$prefix/sites-enabled/roster"
if ! out="$(nginx -t -q -p "$prefix/" -e "$prefix/logs/error.log" -c "$prefix/nginx.conf" 2>&1)" || [ -n "$out" ]; then
  fail "nginx -t rejected deploy/nginx-roster.conf:"$'\n'"$out"
fi
say "nginx-roster.conf passes nginx -t"

if ! command -v curl >/dev/null 2>&1; then
  say "curl is not installed: skipping the live nginx checks"
else
  http_port=""; https_port=""

  # Starts nginx on 127.0.0.1 only with the given variant of the site. Free ports are found by trying.
  start_nginx() {
    local variant="$1"
    for _ in 1 2 3 4 5 6 7 8; do
      http_port=$(( 20000 + RANDOM % 20000 )); https_port=$(( http_port + 1 ))
      sed -e "s#^\(\s*\)listen 80;#\1listen 127.0.0.1:$http_port;#" \
          -e "s#^\(\s*\)listen 443 #\1listen 127.0.0.1:$https_port #" \
          -e '/^\s*listen \[::\]/d' "$variant" > "$prefix/sites-enabled/roster"
      if grep -E '^\s*listen' "$prefix/sites-enabled/roster" | grep -vq '127\.0\.0\.1:'; then
        fail "nginx-roster.conf has a listen line the live test cannot move to 127.0.0.1"
      fi
      : > "$prefix/logs/error.log"
      nginx -p "$prefix/" -e "$prefix/logs/error.log" -c "$prefix/nginx.conf" -g 'daemon off;' 2>>"$tmp/nginx.out" &
      nginx_pid=$!
      for _ in $(seq 1 50); do
        if curl -s --noproxy '*' -o /dev/null "http://127.0.0.1:$http_port/" 2>/dev/null; then return 0; fi
        kill -0 "$nginx_pid" 2>/dev/null || break
        sleep 0.1
      done
      if kill -0 "$nginx_pid" 2>/dev/null; then
        stop_nginx
        fail "nginx runs but did not answer on 127.0.0.1:$http_port within 5 seconds"
      fi
      stop_nginx
      grep -q 'Address already in use' "$tmp/nginx.out" "$prefix/logs/error.log" 2>/dev/null \
        || fail "nginx did not start:"$'\n'"$(cat "$tmp/nginx.out" "$prefix/logs/error.log")"
      : > "$tmp/nginx.out"
    done
    fail "no free pair of ports found on 127.0.0.1"
  }
  stop_nginx() {
    if [ -n "$nginx_pid" ]; then kill -QUIT "$nginx_pid" 2>/dev/null || true; wait "$nginx_pid" 2>/dev/null || true; fi
    nginx_pid=""
  }

  # One request, to 127.0.0.1 only (--resolve; --noproxy so no proxy setting can send it elsewhere).
  # Prints the status code; headers go to $tmp/headers, the body to $tmp/body.
  request() {
    local scheme="$1" path="$2"; shift 2
    local port="$https_port"; [ "$scheme" = http ] && port="$http_port"
    curl -sk --noproxy '*' --max-time 20 --resolve "roster.example.com:$port:127.0.0.1" \
      -D "$tmp/headers" -o "$tmp/body" -w '%{http_code}' "$@" "$scheme://roster.example.com:$port$path" || true
  }
  expect_status() {
    local want="$1" what="$2" got; shift 2
    got="$(request "$@")"
    [ "$got" = "$want" ] || fail "$what: expected HTTP $want, got '$got'"
  }
  header() { tr -d '\r' < "$tmp/headers" | sed -n "s/^$1: //Ip" | tail -n 1; }

  csp="$(sed -n 's/^\s*add_header Content-Security-Policy "\(.*\)" always;$/\1/p' "$repo/nginx.conf" | head -n 1)"
  [ -n "$csp" ] || fail "could not read the Content-Security-Policy of the repository's nginx.conf"
  check_security_headers() {
    [ "$(header Strict-Transport-Security)" = "max-age=63072000" ] || fail "$1: no HSTS header"
    [ "$(header Content-Security-Policy)" = "$csp" ] || fail "$1: Content-Security-Policy differs from nginx.conf's"
    [ "$(header X-Content-Type-Options)" = nosniff ] || fail "$1: no X-Content-Type-Options"
    [ "$(header X-Frame-Options)" = DENY ] || fail "$1: no X-Frame-Options"
    [ "$(header Referrer-Policy)" = same-origin ] || fail "$1: no Referrer-Policy"
    [ "$(header Server)" = nginx ] || fail "$1: the Server header shows the version: $(header Server)"
  }

  start_nginx "$tmp/site.conf"

  expect_status 301 "plain HTTP" http '/databases?x=1'
  [ "$(header Location)" = "https://roster.example.com/databases?x=1" ] \
    || fail "plain HTTP redirects to '$(header Location)', expected https://roster.example.com/databases?x=1"

  expect_status 200 "a static file" https /static/verify.txt
  [ "$(cat "$tmp/body")" = "static ok" ] || fail "/static/ does not serve the Public folder"
  check_security_headers "/static/"
  for value in max-age=3600 public; do
    tr -d '\r' < "$tmp/headers" | grep -qix "Cache-Control: $value" || fail "/static/: no Cache-Control: $value"
  done
  expect_status 200 "robots.txt" https /robots.txt
  # Debian's nginx.conf compresses HTML for every site; this one must not (BREACH).
  expect_status 200 "an HTML file" https /static/verify.html -H 'Accept-Encoding: gzip'
  [ -z "$(header Content-Encoding)" ] || fail "HTML is sent compressed ($(header Content-Encoding)): gzip must be off"

  # No app runs: 502 means nginx passed the request on.
  expect_status 502 "a page" https /databases/1
  check_security_headers "an error page"
  if curl -V | grep -q HTTP2; then
    v="$(curl -sk --noproxy '*' --http2 --resolve "roster.example.com:$https_port:127.0.0.1" -o /dev/null \
      -w '%{http_version}' "https://roster.example.com:$https_port/static/verify.txt" || true)"
    [ "$v" = 2 ] || fail "HTTPS does not speak HTTP/2 (got '$v')"
  fi
  # TLS 1.2 with one cipher offered (the test certificate is ECDSA): GCM is accepted, CBC with SHA-1 is not.
  tls12() {
    curl -sk --noproxy '*' --tlsv1.2 --tls-max 1.2 --ciphers "$1" \
      --resolve "roster.example.com:$https_port:127.0.0.1" \
      -o /dev/null -w '%{http_code}' "https://roster.example.com:$https_port/" 2>/dev/null || true
  }
  [ "$(tls12 ECDHE-ECDSA-AES128-GCM-SHA256)" = 502 ] || fail "TLS 1.2 with ECDHE-ECDSA-AES128-GCM-SHA256 was refused"
  [ "$(tls12 ECDHE-ECDSA-AES128-SHA)" = 000 ] || fail "TLS 1.2 with a CBC cipher (ECDHE-ECDSA-AES128-SHA) was accepted"

  expect_status 502 "/healthz from 127.0.0.1" https /healthz
  expect_status 502 "/metrics from 127.0.0.1" https /metrics

  # Bodies. Within the limit, nginx reads the body and passes it on (502); over it, nginx refuses from the
  # Content-Length alone, so those requests claim a size and send nothing.
  too_big() { expect_status 413 "$1" https "$2" -H "Content-Length: $(( $3 * 1024 * 1024 + 1 ))" --data-binary ''; }
  for n in 1 2 12 13; do dd if=/dev/zero of="$tmp/${n}m" bs=1M count=$n status=none; done
  expect_status 502 "a 1 MB form post" https /databases/1/edit --data-binary @"$tmp/1m"
  too_big "a form post over 1 MB" /databases/1/edit 1
  expect_status 502 "a 12 MB API call" https /api/v1.1/profiles/import_batch --data-binary @"$tmp/12m"
  too_big "an API call over 12 MB" /api/v1.1/profiles/import_batch 12
  expect_status 502 "a 13 MB import" https /databases/7/import --data-binary @"$tmp/13m"
  too_big "an import over 512 MB" /databases/7/import 512
  too_big "a post over 1 MB to /databases/7/import/x" /databases/7/import/x 1

  # The login limit: 1 + burst 20 POSTs pass at once, the next are refused; showing the form never is.
  codes=""
  for _ in $(seq 1 24); do codes+="$(request https /login --data-binary 'email=a&password=b') "; done
  [ "$(echo "$codes" | tr ' ' '\n' | grep -c '^502$')" = 21 ] \
    || fail "login POSTs: expected 21 passed on before the limit, got: $codes"
  [ "$(echo "$codes" | awk '{print $NF}')" = 429 ] \
    || fail "login POSTs beyond the burst are not refused with 429: $codes"
  for spelling in //login /login/ ///login// '/login?next=/'; do
    expect_status 429 "a POST to $spelling after the burst" https "$spelling" --data-binary 'email=a&password=b'
  done
  expect_status 502 "GET /login after the burst" https /login
  expect_status 502 "a POST elsewhere after the burst" https /databases/1/edit --data-binary 'x=1'
  stop_nginx

  # The health check's deny: the same site with loopback no longer allowed must refuse every spelling of the path.
  grep -Pzq '(?s)location ~ \^/\+healthz/\*\$ \{\s*allow 127\.0\.0\.1;\s*allow ::1;\s*deny all;' "$site_src" \
    || fail "nginx-roster.conf: /healthz must allow 127.0.0.1 and ::1 then deny all"
  sed '/allow 127\.0\.0\.1;/d' "$tmp/site.conf" > "$tmp/site-deny.conf"
  start_nginx "$tmp/site-deny.conf"
  for spelling in /healthz //healthz /healthz/ '/healthz?full=1' /%68ealthz; do
    expect_status 403 "$spelling from an address not allowed" https "$spelling"
  done
  expect_status 502 "/healthzx (not the health check)" https /healthzx
  stop_nginx
  say "nginx-roster.conf serves as expected on 127.0.0.1 (redirect, TLS, headers, limits, health check access)"
fi

# ---------------------------------------------------------------------------------------------------------------
# 3. logrotate
if ! command -v logrotate >/dev/null 2>&1; then
  say "logrotate is not installed: skipping the check of deploy/logrotate-roster"
else
  logs="$tmp/log"
  mkdir -p "$logs/nginx/roster" "$tmp/logrotate.d"
  for f in access error roster/access roster/error; do echo line > "$logs/nginx/$f.log"; done
  sed -e "s#/var/log/nginx/#$logs/nginx/#g" -e "s#/run/nginx.pid#$tmp/nginx.pid#g" "$logrotate_src" \
    > "$tmp/logrotate.d/roster-nginx"
  grep -q "$logs/nginx/roster/" "$tmp/logrotate.d/roster-nginx" \
    || fail "logrotate-roster does not name /var/log/nginx/roster/"
  configs=("$tmp/logrotate.d/roster-nginx")
  # Debian's own entry for nginx beside it: a log claimed by both would be an error.
  if [ -f /etc/logrotate.d/nginx ]; then
    sed "s#/var/log/nginx/#$logs/nginx/#g" /etc/logrotate.d/nginx > "$tmp/logrotate.d/nginx"
    configs+=("$tmp/logrotate.d/nginx")
  fi
  chmod 644 "${configs[@]}"
  if ! out="$(logrotate -d -f -s "$tmp/logrotate.state" "${configs[@]}" 2>&1)" || grep -q '^error:' <<<"$out"; then
    fail "logrotate -d rejected deploy/logrotate-roster:"$'\n'"$(grep '^error:' <<<"$out" || tail -n 20 <<<"$out")"
  fi
  grep -q "rotating log $logs/nginx/roster/access.log" <<<"$out" \
    || fail "logrotate would not rotate the Roster access log:"$'\n'"$out"
  say "logrotate-roster passes logrotate -d"
fi

say ok
