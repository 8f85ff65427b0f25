#!/usr/bin/env bash
# Installs the Debian packages a target needs, only those missing; a no-op when all are there.
#   test:  the independent DNG readers the tests check our output with, systemd-analyze and systemd-sysusers
#          for the units, udev (its own rules are the udev checker's positive control)
#          and headless Chromium with its driver for the console's browser test
#   bench: the peer tools the benchmark measures against
set -euo pipefail
case "${1:-test}" in
  test)  want=(libimage-exiftool-perl darktable rawtherapee dcraw systemd udev chromium chromium-driver) ;;
  bench) want=(hugin-tools imagemagick time) ;;
  *) echo "usage: $0 test|bench" >&2; exit 2 ;;
esac
missing=()
for pkg in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "missing Debian packages: ${missing[*]} (run: sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
