#!/bin/bash
# Runs the shipped configurations (conf/actord.conf and conf/examples/*.conf) with the build's
# plugins: each must pass --check-config, start, get messages to its core.counter ("count:
# N msg/s" with N > 0 within 10 s) and stop cleanly on SIGTERM (exit 0). A configuration that
# names a NATS server on 127.0.0.1:4222 gets a nats-server of its own, on a port it picks.
# Usage: run-examples.sh BUILD_DIR SOURCE_DIR
set -u
build=$1 src=$2
actord=$build/daemon/actord
tmp=$(mktemp -d)
server=""
trap '[ -z "$server" ] || kill "$server" 2>/dev/null; rm -rf "$tmp"' EXIT
fail=0

# Starts nats-server on 127.0.0.1 and sets url once it listens (its ports file).
start_nats() {
        mkdir -p "$tmp/nats"
        nats-server -a 127.0.0.1 -p -1 --ports_file_dir "$tmp/nats" -l "$tmp/nats/log" \
                </dev/null >/dev/null 2>&1 &
        server=$!
        local end=$((SECONDS + 10)) f="$tmp/nats/nats-server_$server.ports"
        until [ -s "$f" ]; do
                [ "$SECONDS" -lt "$end" ] && kill -0 "$server" 2>/dev/null || return 1
                sleep 0.1 # a poll with a deadline, for a file the server writes once
        done
        url=$(sed -n 's|.*"\(nats://[^"]*\)".*|\1|p' "$f")
        [ -n "$url" ]
}

for conf in "$src/conf/actord.conf" "$src"/conf/examples/*.conf; do
        name=${conf#"$src"/}
        if grep -q 'nats://127.0.0.1:4222' "$conf"; then
                if [ -z "$server" ] && ! start_nats; then
                        echo "FAIL $name: nats-server did not start"
                        fail=1
                        continue
                fi
                sed "s|nats://127.0.0.1:4222|$url|g" "$conf" >"$tmp/${conf##*/}"
                conf=$tmp/${conf##*/}
        fi
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
                # 0: it ran the 10 s and stopped on SIGTERM; else it ended before, so.
                echo "FAIL $name: no messages counted within 10 s (exit status $status):"
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
