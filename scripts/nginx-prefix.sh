#!/usr/bin/env bash
# Prepares an nginx prefix folder: PREFIX/nginx.conf (the repository's, with the two ports set),
# PREFIX/Public (a link to the repository's Public/), logs/ and tmp/.
# Usage: nginx-prefix.sh PREFIX HTTP_PORT APP_ADDRESS
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
prefix="$1"; http_port="$2"; app="$3"
mkdir -p "$prefix/logs" "$prefix/tmp"
ln -sfn "$repo/Public" "$prefix/Public"
sed -e "s/listen 127.0.0.1:8080;/listen 127.0.0.1:${http_port};/" \
    -e "s/server 127.0.0.1:9009;/server ${app};/" "$repo/nginx.conf" > "$prefix/nginx.conf"
