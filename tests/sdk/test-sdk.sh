#!/bin/bash
# The plugin SDK, as a third party uses it: install the build into a staging root, compile the
# complete plugin of docs/plugins.md out of tree with one compiler line and pkg-config, load it
# into the installed actord and check what it does to the messages.
#   test-sdk.sh BUILD_DIR SOURCE_DIR CC
set -euo pipefail
build=$1 src=$2 cc=$3
tmp=$(mktemp -d)
trap '[ -n "${pid:-}" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; [ -f "$tmp/err" ] && cat "$tmp/err"; exit 1; }

DESTDIR="$tmp/root" cmake --install "$build" >/dev/null
pc=$(find "$tmp/root" -name actord-plugin.pc | head -n 1)
[ -n "$pc" ] || fail "actord-plugin.pc was not installed"
cflags=$(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --define-prefix --cflags actord-plugin)
plugindir=$(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --define-prefix --variable=plugindir actord-plugin)
[ -f "$plugindir/core.so" ] || fail "plugindir $plugindir has no core.so"
actord=$(find "$tmp/root" -path '*bin/actord' | head -n 1)

# The documented plugin, verbatim from the guide.
awk '/^```c$/ {on = 1; next} /^```$/ {on = 0} on' "$src/docs/plugins.md" > "$tmp/demo.c"
grep -q ACTORD_PLUGIN_DEFINE "$tmp/demo.c" || fail "no plugin found in docs/plugins.md"
mkdir -p "$tmp/plugins"
# shellcheck disable=SC2086 # cflags is a list of flags
"$cc" -std=c11 -O2 -Wall -Wextra -Werror -fPIC -shared -fvisibility=hidden -Wl,-z,defs \
        $cflags -o "$tmp/plugins/demo.so" "$tmp/demo.c" || fail "the guide's plugin does not build"
nm -D --defined-only "$tmp/plugins/demo.so" | grep -q ' actord_plugin_v1$' ||
        fail "descriptor not exported"
[ "$(nm -D --defined-only "$tmp/plugins/demo.so" | grep -c ' [TDBR] ')" -eq 1 ] ||
        fail "the plugin exports more than its descriptor"

"$actord" --list-plugins --plugin-dir "$tmp/plugins" > "$tmp/list" 2>"$tmp/err" ||
        fail "--list-plugins"
grep -q "class demo.every: filter" "$tmp/list" || fail "demo.every not listed: $(cat "$tmp/list")"

cpu=$(taskset -pc $$ | sed 's/.*: *//; s/[-,].*//')
cat > "$tmp/demo.conf" <<CONF
actord: { plugin_dirs = [ "$plugindir", "$tmp/plugins" ]; workers = ( { cpu = $cpu; } ); };
components: {
  src = { class = "core.tick"; schedule = { every_us = 200; }; settings = { count = 100; }; };
  keep = { class = "demo.every"; settings = { n = 10; }; };
  out = { class = "core.log"; settings = { path = "$tmp/out.txt"; }; };
};
links = ( "src.out -> keep.in", "keep.out -> out.in" );
CONF
"$actord" --config "$tmp/demo.conf" 2>"$tmp/err" &
pid=$!
for _ in $(seq 1 200); do
        [ "$(wc -l < "$tmp/out.txt" 2>/dev/null || echo 0)" -ge 10 ] && break
        kill -0 $pid 2>/dev/null || fail "actord exited early"
        sleep 0.05
done
kill -TERM $pid
wait $pid || fail "actord exit status $?"
pid=
want=$(for i in 0 10 20 30 40 50 60 70 80 90; do echo "value=$i"; done)
got=$(grep -o 'value=[0-9]*' "$tmp/out.txt")
[ "$got" = "$want" ] || fail "expected one message in ten, got: $got"
tail -n 1 "$tmp/out.txt" | grep -qx "end messages=10 lost=0" || fail "no clean end line"
echo "sdk: 1 passed, 0 failed"
