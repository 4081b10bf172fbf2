#!/bin/sh
# Check the Debian packages crl builds with. As root, install what is
# missing; otherwise print the exact apt-get line and fail.
PKGS="cmake gcc make pkg-config libblis-pthread-dev libcmocka-dev libjansson-dev"
missing=""
for p in $PKGS; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = "0" ]; then
  echo "crl: installing missing Debian packages:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null && apt-get install -y -qq $missing >/dev/null || {
    echo "crl: apt-get install failed for:$missing" >&2; exit 1; }
else
  echo "crl: missing Debian packages. Run:" >&2
  echo "  sudo apt-get install -y$missing" >&2
  exit 1
fi
