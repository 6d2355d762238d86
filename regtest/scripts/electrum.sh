#!/usr/bin/env bash
# Provision Electrum (a Lightning wallet lanes is tested against) and ElectrumX (the server it needs), and
# print the commands that run them.
#
#   regtest/scripts/electrum.sh   -> prints two lines: the path of an `electrum` wrapper, then the path of an
#                                    `electrumx_server` wrapper
#
# Electrum: Debian sid's `electrum` and `python3-electrum` packages, with the sid packages of its own
# libraries (electrum-ecc, electrum-aionostr, aiorpcx) and libsecp256k1, fetched with `apt-get download`
# against a private sid sources list (as regtest/scripts/bitcoind.sh does: the host's apt configuration is
# never touched) and unpacked with `dpkg -x` into .cache/electrum/root. Electrum is pure Python: it runs on
# the host's python3 (>= 3.10), in a venv (.cache/electrum/venv) holding the Python dependencies Debian
# does not ship at matching versions, installed with pip at the versions electrum's own metadata asks for.
# libsecp256k1 (a C library needing only an old glibc) is placed next to electrum_ecc, where it looks first.
#
# ElectrumX: `e-x==1.20.0` from PyPI with plyvel (LevelDB) in a venv (.cache/electrumx/venv). ElectrumX
# 2.x refuses bitcoind older than 31.
#
# Idempotent: a second run only checks that both still start. Progress goes to stderr; any failure exits
# non-zero with a message (the tests never skip for want of Electrum).
set -euo pipefail

log() { echo "electrum.sh: $*" >&2; }
die() { log "$*"; exit 1; }

ELECTRUMX_VERSION=1.20.0
# sid packages: electrum itself, its libraries Debian packages at the versions it wants, and libsecp256k1.
SID_PACKAGES=(electrum python3-electrum python3-electrum-ecc python3-electrum-aionostr python3-aiorpcx libsecp256k1-6)
# Python distributions the sid packages above provide (so pip must not install them), and GUI-only ones.
FROM_SID='aiorpcx electrum-ecc electrum-aionostr'
NOT_NEEDED='qdarkstyle'

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cache="${LANES_CACHE_DIR:-$repo/.cache}"
e_dir="$cache/electrum"
x_dir="$cache/electrumx"
e_wrapper="$e_dir/electrum"
x_wrapper="$x_dir/electrumx_server"
python="${LANES_PYTHON:-python3}"

# One provisioning at a time (test binaries or CI steps running side by side wait for each other).
mkdir -p "$cache"
exec 9>"$cache/electrum.lock"
flock 9

command -v "$python" >/dev/null 2>&1 || die "no $python on PATH (Electrum and ElectrumX need Python >= 3.10)"
"$python" -c 'import sys, venv; sys.exit(sys.version_info < (3, 10))' \
  || die "$python is $("$python" --version 2>&1); Electrum 4.8 and ElectrumX 1.20 need >= 3.10 with the venv module"

electrum_ok() { [ -x "$e_wrapper" ] && e_version=$("$e_wrapper" --offline version 2>/dev/null) && log "electrum $e_version"; }
electrumx_ok() { [ -x "$x_wrapper" ] && "$x_dir/venv/bin/python" -c 'import electrumx, plyvel' >/dev/null 2>&1; }

# ---- Electrum ----
if electrum_ok; then
  log "electrum already provisioned in $e_dir"
else
  apt_dir="$e_dir/apt"
  root="$e_dir/root"
  # shellcheck source=sid-apt.sh
  source "$(dirname "${BASH_SOURCE[0]}")/sid-apt.sh"
  sid_apt_setup "$apt_dir"
  log "downloading: ${SID_PACKAGES[*]}"
  rm -f "$apt_dir"/debs/*.deb
  (cd "$apt_dir/debs" && apt-get "${apt_opts[@]}" -q download "${SID_PACKAGES[@]}" >&2) \
    || die "apt-get download failed (did a sid package get renamed? the list is SID_PACKAGES in this script)"
  rm -rf "$root"; mkdir -p "$root"
  for deb in "$apt_dir"/debs/*.deb; do dpkg -x "$deb" "$root"; done

  site="$root/usr/lib/python3/dist-packages"
  [ -f "$root/usr/bin/electrum" ] && [ -d "$site/electrum" ] || die "no electrum in the unpacked packages: the layout changed"
  secp=$(find "$root/usr/lib/x86_64-linux-gnu" -name 'libsecp256k1.so.*' -type f | head -n 1)
  [ -n "$secp" ] || die "no libsecp256k1.so.* in libsecp256k1-6"
  # electrum_ecc tries libsecp256k1.so.<abi> in its own directory before the system's.
  cp "$secp" "$site/electrum_ecc/libsecp256k1.so.6"

  metadata=$(ls "$site"/electrum-*.dist-info/METADATA 2>/dev/null | head -n 1)
  [ -n "$metadata" ] || die "no electrum dist-info METADATA in python3-electrum"
  # Electrum's own requirements (no extras), minus what sid provides above and the GUI's; plus cryptography,
  # which Debian's package depends on (upstream's "crypto" extra).
  mapfile -t reqs < <("$python" - "$metadata" "$FROM_SID $NOT_NEEDED" <<'PY'
import re, sys
skip = {n.replace('_', '-').lower() for n in sys.argv[2].split()}
for line in open(sys.argv[1], encoding='utf-8'):
    if not line.startswith('Requires-Dist:'):
        continue
    req = line.split(':', 1)[1].strip()
    if ';' in req:  # an extra (hardware, gui, ...)
        continue
    name = re.split(r'[<>=!~ \[]', req, maxsplit=1)[0].replace('_', '-').lower()
    if name not in skip:
        print(req)
print('cryptography>=2.6')
PY
  )
  [ "${#reqs[@]}" -gt 1 ] || die "could not read electrum's requirements from $metadata"

  rm -rf "$e_dir/venv"
  "$python" -m venv "$e_dir/venv" >&2
  log "pip installing electrum's Python dependencies: ${reqs[*]}"
  "$e_dir/venv/bin/pip" install -q --disable-pip-version-check "${reqs[@]}" >&2 || die "pip install of electrum's dependencies failed"
  venv_site=$("$e_dir/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  echo "$site" > "$venv_site/debian-sid-electrum.pth"

  cat > "$e_wrapper" <<WRAP
#!/bin/sh
# Generated by regtest/scripts/electrum.sh: Debian sid's electrum on the venv's Python.
exec "$e_dir/venv/bin/python" "$root/usr/bin/electrum" "\$@"
WRAP
  chmod +x "$e_wrapper"
  electrum_ok || die "the provisioned electrum does not run: $("$e_wrapper" --offline version 2>&1 | tail -n 5)"
fi
log "electrum ready: $e_wrapper"

# ---- ElectrumX ----
if electrumx_ok; then
  log "electrumx already provisioned in $x_dir"
else
  mkdir -p "$x_dir"
  rm -rf "$x_dir/venv"
  "$python" -m venv "$x_dir/venv" >&2
  log "pip installing e-x==$ELECTRUMX_VERSION and plyvel"
  "$x_dir/venv/bin/pip" install -q --disable-pip-version-check "e-x==$ELECTRUMX_VERSION" plyvel >&2 \
    || die "pip install e-x==$ELECTRUMX_VERSION plyvel failed"
  cat > "$x_wrapper" <<WRAP
#!/bin/sh
# Generated by regtest/scripts/electrum.sh: ElectrumX $ELECTRUMX_VERSION from PyPI, configured by environment.
exec "$x_dir/venv/bin/electrumx_server" "\$@"
WRAP
  chmod +x "$x_wrapper"
  electrumx_ok || die "the provisioned electrumx cannot import electrumx and plyvel"
fi
log "electrumx $ELECTRUMX_VERSION ready: $x_wrapper"

echo "$e_wrapper"
echo "$x_wrapper"
