#!/usr/bin/env bash
# Lays out the files of a FROM-scratch image in OUT_DIR/root: the given binaries in
# /usr/local/bin, every shared library they link (as ldd finds them here, so the image
# runs them exactly as this machine does), /tmp, and /etc/passwd and /etc/group naming the
# unprivileged user 65532 ("lilypad") the images run as. OUT_DIR/data/lilypad is the empty
# data directory the Dockerfile copies to /var/lib/lilypad owned by that user.
# Usage: deploy/docker/rootfs.sh OUT_DIR BINARY...
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 OUT_DIR BINARY..." >&2; exit 2; }
rm -rf "$1"
mkdir -p "$1/data/lilypad"
out=$1/root
shift
mkdir -p "$out/usr/local/bin" "$out/etc" "$out/tmp" "$out/var/lib"
chmod 1777 "$out/tmp"
for binary in "$@"; do
    [ -x "$binary" ] || { echo "rootfs.sh: $binary is not an executable" >&2; exit 1; }
    cp "$binary" "$out/usr/local/bin/"
    # Debug information is not needed to run (and is most of a debug build's size).
    if command -v strip >/dev/null 2>&1; then strip --strip-debug "$out/usr/local/bin/$(basename "$binary")"; fi
    # "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" and "/lib64/ld-linux-x86-64.so.2 (0x...)"
    ldd "$binary" | awk '/=> \// {print $3} /^\t\// {print $1}' | while read -r lib; do
        mkdir -p "$out$(dirname "$lib")"
        cp -L "$lib" "$out$lib"
    done
done
printf 'root:x:0:0:root:/root:/sbin/nologin\nlilypad:x:65532:65532:lilypad:/var/lib/lilypad:/sbin/nologin\n' > "$out/etc/passwd"
printf 'root:x:0:\nlilypad:x:65532:\n' > "$out/etc/group"
echo "rootfs.sh: $out holds $* and $(find "$out" -name '*.so*' | wc -l) shared libraries"
