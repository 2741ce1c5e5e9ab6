#!/usr/bin/env bash
# Installs what thfc needs on a fresh Debian 12 machine with Node 20, as root:
# Debian packages, the npm dependencies (npm ci) and the build. Idempotent and
# quiet when everything is already there. Sourced by demo.sh and test.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# build-essential + python3: zstd-napi compiles its native binding (no prebuilt download here).
# libfuse2 + fuse3: fuse-native links libfuse.so.2; fusermount comes from fuse3.
# e2fsprogs: mkfs.ext4 -d builds the sample and test images.
# qemu-system-x86 + qemu-utils: guests boot off the mount through a qcow2 overlay (qemu-img).
# busybox-static, cpio, xz-utils: the bootable test image (a Debian kernel is fetched with apt-get download).
# redis-server: the mirror registry; tests start their own on a free loopback port.
# bind9-dnsutils: dig, to query DNS-Balance as a real client would.
# swtpm + tpm2-tools: a software TPM for measured mounts and attestation.
# tmux: drives the OS menu under a real TTY in tests.
# libnbd-bin: nbdinfo and nbdcopy, the real NBD clients the tests of `httpstorged nbd` read with.
APT_PACKAGES=(build-essential python3 libfuse2 fuse3 e2fsprogs zstd util-linux
  qemu-system-x86 qemu-utils busybox-static cpio xz-utils
  redis-server bind9-dnsutils swtpm tpm2-tools tmux libnbd-bin
  man-db) # man-db: test/man-pages.test.ts renders the generated pages with `man -l`
APT_PACKAGES+=("$@")

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
export DEBIAN_FRONTEND=noninteractive
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
elif [[ -z $(ls -A /var/lib/apt/lists 2>/dev/null | grep -v -e lock -e partial) ]]; then
  # The test image's kernel comes from `apt-get download`, which needs package lists.
  apt-get update -qq >/dev/null
fi
# Installing redis-server starts a system instance on port 6379; nothing here uses it.

# npm ci only when the lockfile changed since the last install: it rebuilds native modules.
stamp=node_modules/.thfc-lock.sha1
want=$(sha1sum package-lock.json | cut -d' ' -f1)
if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
  echo "setup: npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
  echo "$want" >"$stamp"
fi

npm run --silent build

# The workspaces' commands (thfc-pack, httpstorged, …) point into dist/, which a fresh clone only has after the
# build: `npm ci` skips a bin whose file does not exist yet, so link them now (no scripts run, ~0.5 s; every
# bin the workspaces declare, which test/commands.test.ts checks).
npm rebuild --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null
