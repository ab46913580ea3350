#!/usr/bin/env bash
# actord as installed, under a real systemd: boots systemd as PID 1 in a systemd-nspawn
# container made from a cached Debian 12 rootfs, installs BUILD_DIR into it (cmake --install)
# and runs inside.sh there, which prints one line per check.
#
#   tests/systemd/run.sh [BUILD_DIR]      (default: build/, the dev preset's)
#
# Exit 0 when every check passed, 1 when one failed. Where this machine cannot run such a
# container (not root and no password-less sudo, no mount namespaces) it prints "SKIP: why"
# and exits 0. The rootfs is made once by debootstrap, from the mirror of the host's apt
# sources, under $ACTORD_TEST_CACHE (default ${XDG_CACHE_HOME:-~/.cache}/actord); each run
# mounts it read-only below a tmpfs (overlayfs), so a run leaves nothing behind.
# shellcheck disable=SC2015 # "test && test || fail" where the tests have no side effects
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
suite=bookworm
# Beyond minbase: systemd as init, D-Bus for systemctl and systemd-analyze, kill(1) for
# ExecReload, the libraries actord and its plugins link, and a NATS server for the bridge.
pkgs=systemd,systemd-sysv,dbus,procps,libconfig9,libsystemd0,libnats3.4,nats-server,libmicrohttpd12
limit=${ACTORD_TEST_TIMEOUT:-300} # seconds for boot + checks + power-off

skip() {
        echo "SKIP: test-systemd: $*"
        exit 0
}
fail() {
        echo "FAIL: test-systemd: $*" >&2
        exit 1
}
say() { echo "test-systemd: $*"; }

if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null && sudo -n true 2>/dev/null ||
                skip "needs root, or sudo without a password (containers, mounts, debootstrap)"
        exec sudo -n "$0" "$@"
fi
build=$(cd "${1:-$src/build}" 2>/dev/null && pwd) || fail "no build folder ${1:-$src/build}"
[ -x "$build/daemon/actord" ] && [ -f "$build/tests/plugins/freeze/freeze.so" ] ||
        fail "$build has no actord or test plugin: build the dev preset first"
unshare --mount true 2>/dev/null || skip "cannot create a mount namespace (unprivileged container?)"
if ! command -v systemd-nspawn >/dev/null || ! command -v debootstrap >/dev/null; then
        "$src/scripts/install-deps.sh" --systemd >/dev/null ||
                skip "systemd-nspawn and debootstrap are missing and could not be installed"
fi

# The mirror the host's apt uses for $suite: one-line (sources.list) or deb822 (.sources).
apt_mirror() {
        local f
        for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
                [ -r "$f" ] || continue
                awk -v s="$suite" '/^[ \t]*deb[ \t]/ { sub(/\[[^]]*\]/, "");
                        if ($3 == s) { print $2; found = 1; exit } } END { exit !found }' "$f" &&
                        return 0
        done
        for f in /etc/apt/sources.list.d/*.sources; do
                [ -r "$f" ] || continue
                awk -v s="$suite" '
                        function end() {
                                if (t ~ /(^| )deb( |$)/ && (" " su " ") ~ (" " s " ") && u != "" &&
                                    tolower(en) != "no") { split(u, a, " "); print a[1]; found = 1; exit }
                                t = u = su = en = ""
                        }
                        /^[ \t]*$/ { end(); next }
                        $1 == "Types:" { sub(/^Types:[ \t]*/, ""); t = $0 }
                        $1 == "URIs:" { sub(/^URIs:[ \t]*/, ""); u = $0 }
                        $1 == "Suites:" { sub(/^Suites:[ \t]*/, ""); su = $0 }
                        $1 == "Enabled:" { en = $2 }
                        END { if (!found) end(); exit !found }' "$f" && return 0
        done
        return 1
}

# The rootfs, built once per package list. The lock keeps two runs from building at once, and
# (held shared while a container runs) a rebuild from pulling the rootfs from under a run.
cache=${ACTORD_TEST_CACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/actord}
rootfs=$cache/rootfs-$suite-$(echo "$pkgs" | sha256sum | cut -c1-10)
mkdir -p "$cache"
exec 9>"$cache/lock"
flock 9
if [ ! -f "$rootfs.done" ]; then
        mirror=${ACTORD_TEST_MIRROR:-$(apt_mirror)} ||
                skip "no Debian $suite mirror in /etc/apt/sources.list* (or set ACTORD_TEST_MIRROR)"
        say "building the $suite rootfs once (debootstrap from $mirror) into $rootfs"
        for old in "$cache"/rootfs-*; do
                [ -e "$old" ] && rm -rf --one-file-system "$old"
        done
        # Its own mount namespace: what debootstrap mounts (proc, sys) goes away with it.
        unshare --mount --propagation private debootstrap --variant=minbase --include="$pkgs" \
                "$suite" "$rootfs" "$mirror" >"$cache/debootstrap.log" 2>&1 || {
                tail -n 15 "$cache/debootstrap.log"
                fail "debootstrap failed; log: $cache/debootstrap.log"
        }
        rm -f "$rootfs"/var/cache/apt/archives/*.deb
        touch "$rootfs.done"
fi
flock -s 9

# rm_cgroup DIR: removes a cgroup and those below it, deepest first, once their processes are
# gone (they are when nspawn has exited; the kernel may take a moment to notice).
rm_cgroup() {
        for _ in $(seq 50); do
                find "$1" -depth -type d -exec rmdir {} + 2>/dev/null || true
                [ -d "$1" ] || return 0
                sleep 0.1
        done
        echo "test-systemd: could not remove cgroup $1" >&2
}
# What a run killed by SIGKILL left: its folder (once nothing uses it) and its cgroups.
for d in /var/tmp/actord-systemd-test.*; do
        [ -f "$d/pid" ] && [ ! -e "/proc/$(cat "$d/pid")" ] || continue
        pgrep -f -- "$d" >/dev/null || rm -rf --one-file-system "$d"
done
for d in /sys/fs/cgroup/*/actord-test-* /sys/fs/cgroup/actord-test-*; do
        [ -d "$d" ] && [ ! -d "/var/tmp/actord-systemd-test.${d##*actord-test-}" ] && rm_cgroup "$d"
done

# The payload, laid over the rootfs: the install, the test and the unit that runs it at boot.
umask 022
run=$(mktemp -d /var/tmp/actord-systemd-test.XXXXXX)
echo $$ >"$run/pid"
name=actord-test-${run##*.}
cgroups=()
cleanup() {
        for d in "${cgroups[@]}"; do rm_cgroup "$d"; done
        rm -rf --one-file-system "$run"
}
trap cleanup EXIT
p=$run/payload
DESTDIR=$p cmake --install "$build" >"$run/install.log" || {
        cat "$run/install.log"
        fail "cmake --install failed"
}
# A reinstall keeps an edited configuration.
. "$build/tests/systemd/layout.env"
echo "# edited by the administrator" >>"$p$ACTORD_CONFIG"
DESTDIR=$p cmake --install "$build" >>"$run/install.log" || fail "cmake --install (again) failed"
tail -n 1 "$p$ACTORD_CONFIG" | grep -qx "# edited by the administrator" ||
        fail "a reinstall replaced the edited $ACTORD_CONFIG"
echo "ok   a reinstall keeps an edited configuration"
install -D -m 0644 "$build/tests/systemd/layout.env" "$p/opt/actord-test/layout.env"
install -m 0755 "$here/inside.sh" "$here/probe.sh" "$p/opt/actord-test/"
install -m 0644 "$build/tests/plugins/freeze/freeze.so" "$p/opt/actord-test/freeze.so"
# A certificate for the metrics over HTTPS, and its key readable by root alone: the unit hands
# it to actord as a credential (inside.sh).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=127.0.0.1 \
        -keyout "$p/opt/actord-test/metrics.key" -out "$p/opt/actord-test/metrics.pem" \
        >"$run/openssl.log" 2>&1 || fail "openssl req failed: $(tail -n 3 "$run/openssl.log")"
chmod 0600 "$p/opt/actord-test/metrics.key"
chmod 0644 "$p/opt/actord-test/metrics.pem"
install -D -m 0644 "$here/actord-test.service" "$p/etc/systemd/system/actord-test.service"
mkdir -p "$p/etc/systemd/system/multi-user.target.wants"
ln -s ../actord-test.service "$p/etc/systemd/system/multi-user.target.wants/"
# The console is the test's: no login prompt there (its getty would hang the console up).
ln -s /dev/null "$p/etc/systemd/system/console-getty.service"

# Without systemd on the host, nspawn cannot have a scope made for it: it keeps the cgroup it
# is started in, so give it one of its own in each hierarchy (removed by cleanup).
reg=(--register=no)
if [ ! -d /run/systemd/system ]; then
        reg+=(--keep-unit)
        for h in /sys/fs/cgroup/systemd /sys/fs/cgroup/unified /sys/fs/cgroup; do
                [ -f "$h/cgroup.procs" ] && mkdir "$h/$name" && cgroups+=("$h/$name")
        done
fi
# The container gets a cgroup v2 tree even on a hybrid host, like a current distribution.
export SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1

# In a mount namespace of its own, which disappears with nspawn: a fresh /run when the host's
# is not systemd's tmpfs (nspawn refuses to clean up below it otherwise), and the container's
# root, an overlay of the payload and the rootfs below a tmpfs (a copy where overlayfs fails).
# shellcheck disable=SC2016 # expanded by the inner shell
inner='set -e
run=$1 rootfs=$2; shift 2
[ -d /run/systemd/system ] || mount -t tmpfs -o mode=0755 tmpfs /run
mkdir "$run/mnt" && mount -t tmpfs -o mode=0755 tmpfs "$run/mnt"
mkdir "$run/mnt/upper" "$run/mnt/work" "$run/mnt/root"
mount -t overlay -o "lowerdir=$run/payload:$rootfs,upperdir=$run/mnt/upper,workdir=$run/mnt/work" \
        overlay "$run/mnt/root" 2>/dev/null ||
        { cp -a "$rootfs/." "$run/payload/." "$run/mnt/root/"; }
exec "$@"'

say "booting systemd in a container ($(systemd-nspawn --version | head -n 1)); checks:"
start=$SECONDS
: >"$run/console.log" # there before tail looks
(
        for d in "${cgroups[@]}"; do echo "$BASHPID" >"$d/cgroup.procs"; done
        exec 9>&-
        # SIGTERM (from timeout, or from the trap below) makes nspawn power the container off;
        # SIGKILL 30 s later if it has not.
        exec timeout -k 30 "$limit" unshare --mount --propagation private sh -c "$inner" sh \
                "$run" "$rootfs" systemd-nspawn --quiet --boot --directory="$run/mnt/root" \
                --machine="$name" "${reg[@]}" --private-network --link-journal=no \
                --resolv-conf=off --timezone=off --console=read-only systemd.show_status=no
) </dev/null >>"$run/console.log" 2>&1 &
container=$!
tail -s 0.1 -n +1 -f --pid="$container" "$run/console.log" &
interrupted=""
trap 'interrupted=1; kill -TERM "$container" 2>/dev/null' INT TERM
# A trapped signal ends a wait early: wait again until the container is gone.
while wait "$container"; rc=$? && kill -0 "$container" 2>/dev/null; do :; done
wait # for tail, which prints the rest of the console first
[ -z "$interrupted" ] || fail "interrupted"
# The summary line is the test's own: without it, the container never ran the test.
summary=$(grep -a -E '^systemd: [0-9]+ passed, [0-9]+ failed' "$run/console.log" | tail -n 1) || true
[ "$rc" -ne 124 ] && [ "$rc" -ne 137 ] || fail "timed out after ${limit}s"
[ -n "$summary" ] || fail "the container did not run the test (exit $rc); console above"
say "$summary in $((SECONDS - start)) s (container exit status $rc)"
[ "$rc" -eq 0 ]
