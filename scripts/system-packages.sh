#!/usr/bin/env bash
# Installs the Debian packages a target needs, only those missing; a no-op when all are there.
#   test:  the independent DNG readers the tests check our output with, systemd-analyze and systemd-sysusers
#          for the units, udev (its own rules are the udev checker's positive control),
#          headless Chromium with its driver for the console's browser test, and rawtran-doc, which carries the
#          real Canon EOS 30D raw the tests blend (/usr/share/doc/rawtran/IMG_5952.CR2, GPL-3+)
#   bench: the peer tools the benchmark measures against (hugin-tools and enblend for the stitch, hugin_stacker and
#          ImageMagick for the median)
set -euo pipefail
case "${1:-test}" in
  test)  want=(libimage-exiftool-perl darktable rawtherapee dcraw systemd udev chromium chromium-driver rawtran-doc) ;;
  bench) want=(hugin-tools enblend imagemagick time) ;;
  *) echo "usage: $0 test|bench" >&2; exit 2 ;;
esac
missing=()
for pkg in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing Debian packages: ${missing[*]} (run: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# A slim image may exclude /usr/share/doc from every install (dpkg's path-exclude): then the sample raw is taken
# from the package itself into the checkout's own cache, where tests/conftest.py looks next.
sample=/usr/share/doc/rawtran/IMG_5952.CR2
cache=.cache/samples/IMG_5952.CR2
if [ "${1:-test}" = test ] && [ ! -f "$sample" ] && [ ! -f "$cache" ]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  # apt warns that its _apt user cannot write into our private temp folder and downloads as root instead: fine.
  (cd "$work" && apt-get download -qq rawtran-doc 2>&1 >/dev/null | grep -v 'unsandboxed' >&2 || true)
  dpkg-deb -x "$work"/rawtran-doc_*.deb "$work/root"
  mkdir -p "$(dirname "$cache")"
  cp "$work/root$sample" "$cache.tmp" && mv "$cache.tmp" "$cache"
fi
