#!/bin/bash
# Runs the shipped configurations (conf/actord.conf and conf/examples/*.conf) with the build's
# plugins: each must pass --check-config, start, get messages to its core.counter ("count:
# N msg/s" with N > 0 within 10 s) and stop cleanly on SIGTERM (exit 0).
# Usage: run-examples.sh BUILD_DIR SOURCE_DIR
set -u
build=$1 src=$2
actord=$build/daemon/actord
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
for conf in "$src/conf/actord.conf" "$src"/conf/examples/*.conf; do
        name=${conf#"$src"/}
        if ! out=$("$actord" --check-config --config "$conf" --plugin-dir "$build/plugins" 2>&1); then
                echo "FAIL $name: --check-config: $out"
                fail=1
                continue
        fi
        "$actord" --config "$conf" --plugin-dir "$build/plugins" 2>"$tmp/err" &
        pid=$!
        end=$((SECONDS + 10))
        until grep -q '^<6>count: [1-9][0-9]* msg/s' "$tmp/err"; do
                if [ "$SECONDS" -ge "$end" ] || ! kill -0 "$pid" 2>/dev/null; then
                        break
                fi
                sleep 0.1 # a poll with a deadline, for a line the daemon writes each second
        done
        line=$(grep -m 1 '^<6>count: [1-9][0-9]* msg/s' "$tmp/err")
        kill -TERM "$pid" 2>/dev/null
        wait "$pid"
        status=$?
        if [ -z "$line" ]; then
                echo "FAIL $name: no messages counted within 10 s:"
                tail -n 5 "$tmp/err"
                fail=1
        elif [ "$status" -ne 0 ]; then
                echo "FAIL $name: exit status $status after SIGTERM"
                tail -n 5 "$tmp/err"
                fail=1
        else
                echo "ok   $name: ${line#<6>}"
        fi
done
exit "$fail"
