#!/usr/bin/env bash
# Installs what thfc needs on a fresh Debian 12 machine with Node 20, as root:
# Debian packages, the npm dependencies (npm ci) and the build. Idempotent and
# quiet when everything is already there. Sourced by demo.sh and test.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# build-essential + python3: zstd-napi compiles its native binding (no prebuilt download here).
# libfuse2 + fuse3: fuse-native links libfuse.so.2; fusermount comes from fuse3.
# e2fsprogs: mkfs.ext4 -d builds the sample and test images.
APT_PACKAGES=(build-essential python3 libfuse2 fuse3 e2fsprogs zstd util-linux)
APT_PACKAGES+=("$@")

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm ci only when the lockfile changed since the last install: it rebuilds native modules.
stamp=node_modules/.thfc-lock.sha1
want=$(sha1sum package-lock.json | cut -d' ' -f1)
if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
  echo "setup: npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
  echo "$want" >"$stamp"
fi

npm run --silent build
