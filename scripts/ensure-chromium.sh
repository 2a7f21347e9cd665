#!/usr/bin/env bash
# Makes sure a Chromium that the web page's browser tests can drive is
# installed: /usr/bin/chromium (or $PGTRAIL_CHROMIUM), else Debian's
# chromium package. The tests skip without it, unless CI=true, where a
# missing browser fails them.
set -euo pipefail

bin=${PGTRAIL_CHROMIUM:-/usr/bin/chromium}
if [ -x "$bin" ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ] && ! command -v sudo >/dev/null; then
  echo "ensure-chromium: $bin is missing; install Debian's chromium package (apt-get install chromium)" >&2
  exit 1
fi
sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo
echo "ensure-chromium: installing chromium"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null
"$bin" --version
