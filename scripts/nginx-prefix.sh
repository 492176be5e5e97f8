#!/usr/bin/env bash
# Prepares an nginx prefix folder: PREFIX/nginx.conf (the repository's, with the two ports set),
# PREFIX/Public (a copy of the repository's Public/: small, and readable by nginx's workers wherever
# the repository lives), logs/ and tmp/.
# Usage: nginx-prefix.sh PREFIX HTTP_PORT APP_ADDRESS [APP_ADDRESS...]  (several: one upstream of app hosts)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
prefix="$1"; http_port="$2"; shift 2
servers=""
for app in "$@"; do servers="${servers}server ${app}; "; done
mkdir -p "$prefix/logs" "$prefix/tmp"
chmod 755 "$prefix"
rm -rf "$prefix/Public"
cp -R "$repo/Public" "$prefix/Public"
chmod -R a+rX "$prefix/Public"
sed -e "s/listen 127.0.0.1:8080;/listen 127.0.0.1:${http_port};/" \
    -e "s#server 127.0.0.1:9009;#${servers}#" "$repo/nginx.conf" > "$prefix/nginx.conf"
# Started as root, nginx runs its workers as "nobody". If nobody cannot reach the prefix (a repository
# under /root, say), run the workers as the current user instead, and say so.
if [ "$(id -u)" -eq 0 ] && ! su -s /bin/sh nobody -c "test -r '$prefix/Public/app.css'" 2>/dev/null; then
  echo "nginx-prefix: 'nobody' cannot read $prefix; nginx workers will run as root" >&2
  sed -i '1i user root;' "$prefix/nginx.conf"
elif [ "$(id -u)" -eq 0 ] && getent group www-data >/dev/null; then
  # The app's Unix socket is 0660 with group www-data (Debian's nginx group): the workers join that group.
  sed -i '1i user nobody www-data;' "$prefix/nginx.conf"
fi
