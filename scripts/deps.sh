#!/usr/bin/env bash
# Installs the Debian packages Roster needs, only those missing. Safe to run again.
set -euo pipefail
packages=(nginx-light libfcgi-dev libsqlite3-dev libsodium-dev libxxhash-dev libssl-dev libpq-dev libqrencode-dev libgeoip-dev geoip-database sqlite3 pkg-config curl)
if [ "${1:-}" = "--bench" ]; then packages+=(wrk postgresql); fi
# The browser suite: Debian's Chromium, its WebDriver, and Python's selenium (run with /usr/bin/python3).
if [ "${1:-}" = "--e2e" ]; then packages+=(chromium chromium-driver python3-selenium); fi
# The deployment files' check (scripts/verify-deploy.sh): systemd-analyze, a self-signed certificate, logrotate -d.
if [ "${1:-}" = "--e2e" ]; then packages+=(systemd openssl logrotate); fi
# The PostgreSQL store's tests run against a throwaway cluster of Debian's server (scripts/postgres.sh).
if [ "${1:-}" = "--e2e" ]; then packages+=(postgresql); fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# nginx-light or full nginx both do; accept either.
if printf '%s\n' "${missing[@]}" | grep -qx nginx-light && command -v nginx >/dev/null; then
  missing=("${missing[@]/nginx-light}")
fi
missing=($(printf '%s\n' "${missing[@]}" | grep -v '^$' || true))
[ ${#missing[@]} -eq 0 ] && exit 0
echo "Installing: ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "Run as root, or install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
