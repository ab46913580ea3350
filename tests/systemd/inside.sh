#!/bin/bash
# Runs inside the container made by run.sh, as root, once systemd (PID 1) has booted: the
# installed actord as an administrator uses it. One line per check ("ok" or "FAIL", with why),
# then "systemd: N passed, N failed"; exits 1 if any failed. Waits are polls with deadlines.
# shellcheck disable=SC2015,SC2317 # "check && ok || bad": ok never fails; wait_for runs the
# small predicate functions.
set -uo pipefail
here=/opt/actord-test
# shellcheck source=/dev/null # made by CMake from layout.env.in
. "$here/layout.env"
trigger=/run/actord-test/freeze # test.freeze blocks its worker when this file changes

passed=0 failed=0
ok() {
        passed=$((passed + 1))
        echo "ok   $*"
}
bad() {
        failed=$((failed + 1))
        echo "FAIL $*"
}
finish() {
        if [ "$failed" -gt 0 ]; then
                echo "--- systemctl status actord; journalctl -u actord (last 40 lines) ---"
                systemctl status --no-pager --lines=0 actord
                journalctl -u actord --no-pager -n 40 -o short-monotonic
        fi
        echo "systemd: $passed passed, $failed failed"
        [ "$failed" -eq 0 ]
        exit
}

# wait_for SECONDS COMMAND...: runs COMMAND every 0.1 s until it succeeds (0) or time is up (1).
wait_for() {
        local end=$((${EPOCHREALTIME/./} + $1 * 1000000))
        shift
        until "$@"; do
                [ "${EPOCHREALTIME/./}" -lt "$end" ] || return 1
                sleep 0.1
        done
}
prop() { systemctl show -p "$1" --value actord; }

# entry PID REGEX: prints the first journal entry (KEY=value lines) that process PID of the unit
# logged with a MESSAGE matching REGEX.
entry() {
        journalctl _SYSTEMD_UNIT=actord.service _PID="$1" -o export --no-pager 2>/dev/null |
                awk -v re="$2" 'BEGIN { RS = ""; FS = "\n" }
                        { for (i = 1; i <= NF; i++)
                                if ($i ~ /^MESSAGE=/ && substr($i, 9) ~ re) { print; exit } }'
}
logged() { [ -n "$(entry "$1" "$2")" ]; }
# has_fields ENTRY KEY=VALUE...: whether the entry carries each field with that value.
has_fields() {
        local e=$1 f
        shift
        for f; do grep -qxF -- "$f" <<<"$e" || return 1; done
}

# --- The install, where the build says each piece goes.
for f in "$ACTORD_BIN" "$ACTORD_CTL" "$ACTORD_PLUGIN_DIR/core.so" "$ACTORD_PLUGIN_DIR/nats.so" \
        "$ACTORD_HEADER" "$ACTORD_PC" \
        "$ACTORD_CONFIG" "$ACTORD_UNIT" "$ACTORD_DOC" "$ACTORD_MANDIR/man8/actord.8" \
        "$ACTORD_MANDIR/man1/actorctl.1"; do
        if [ -f "$f" ]; then ok "installed: $f"; else bad "installed: $f is missing"; fi
done
grep -qx "ExecStart=$ACTORD_BIN --config $ACTORD_CONFIG" "$ACTORD_UNIT" &&
        ok "the unit starts $ACTORD_BIN with $ACTORD_CONFIG" ||
        bad "the unit's ExecStart is not '$ACTORD_BIN --config $ACTORD_CONFIG'"

# --- The unit, as systemd sees it.
if out=$(systemd-analyze verify "$ACTORD_UNIT" 2>&1) && [ -z "$out" ]; then
        ok "systemd-analyze verify: clean"
else
        bad "systemd-analyze verify: $out"
fi
out=$(systemd-analyze security actord.service 2>&1)
level=$(sed -n 's/.*Overall exposure level for actord.service: \([0-9.]*\).*/\1/p' <<<"$out")
if [ -z "$level" ]; then
        bad "systemd-analyze security printed no exposure level: $out"
elif awk -v l="$level" 'BEGIN { exit !(l <= 2.5) }'; then
        ok "systemd-analyze security: exposure $level (at most 2.5)"
else
        bad "systemd-analyze security: exposure $level, above 2.5:"
        grep '✗' <<<"$out"
fi

# --- Start, with the installed configuration and plugins.
if systemctl start actord; then ok "systemctl start actord"; else
        bad "systemctl start actord failed"
        finish
fi
state=$(systemctl is-active actord) && ok "systemctl is-active: $state" ||
        bad "systemctl is-active: $state"
pid=$(prop MainPID)
flowing() { [[ $(prop StatusText) =~ ^[0-9]+\ components\ on\ [0-9]+\ workers\;\ [1-9][0-9]*\ msg/s ]]; }
wait_for 5 flowing && ok "StatusText: $(prop StatusText)" ||
        bad "StatusText shows no message flowing: '$(prop StatusText)'"

# Each worker thread pinned to its CPU (conf/actord.conf: worker N on CPU N).
pins=""
for t in /proc/"$pid"/task/*; do
        [[ $(<"$t/comm") == actord-w* ]] &&
                pins+="$(<"$t/comm"):$(sed -n 's/^Cpus_allowed_list:\t//p' "$t/status") "
done
[ "$pins" = "actord-w0:0 actord-w1:1 " ] && ok "worker threads pinned: $pins" ||
        bad "worker threads not pinned as configured (want actord-w0:0 actord-w1:1): $pins"

# --- The journal: structured fields on the lines about a component.
wait_for 5 logged "$pid" "^component 'tick' "
e=$(entry "$pid" "^component 'tick' ")
has_fields "$e" COMPONENT=tick CLASS=core.tick WORKER=0 PRIORITY=6 SYSLOG_IDENTIFIER=actord &&
        ok "journal: '$(sed -n 's/^MESSAGE=//p' <<<"$e")' has COMPONENT, CLASS, WORKER" ||
        bad "journal: no COMPONENT=tick CLASS=core.tick WORKER=0 on the line about tick: $e"
wait_for 5 logged "$pid" "^count: " # what core.counter logs each second, through the host table
e=$(entry "$pid" "^count: ")
has_fields "$e" COMPONENT=count CLASS=core.counter WORKER=0 &&
        ok "journal: a plugin's own line has COMPONENT=count CLASS=core.counter WORKER=0" ||
        bad "journal: core.counter's line lacks its fields: ${e:-no line from count}"

# --- The control socket in the unit's runtime directory, through the installed actorctl.
sock=/run/actord/control.sock
[ -S "$sock" ] && [ "$(stat -c %a "$sock")" = 660 ] && ok "control socket: $sock, mode 660" ||
        bad "control socket: $sock is missing or not mode 660: $(ls -l "$sock" 2>&1)"
out=$("$ACTORD_CTL" status 2>&1)
[[ $out == "actord "*", pid $pid, up "* ]] && ok "actorctl status: $(head -n 1 <<<"$out")" ||
        bad "actorctl status: $out"
published() { "$ACTORD_CTL" metrics | awk '/^actord_channel_published_total\{from="tick.out",to="scale.in",/ { print $2 }'; }
first=$(published)
grown() { [ "$(published)" -gt "${first:-0}" ]; }
[ -n "$first" ] && wait_for 5 grown && ok "actorctl metrics: tick.out -> scale.in published $first, then $(published)" ||
        bad "actorctl metrics: tick.out's published count did not grow: '$first' '$(published)'"

out=$(timeout 10 "$ACTORD_CTL" tap scale.out 3 2>&1)
[ "$(grep -c '^chan_seq=[0-9]* sample seq=' <<<"$out")" = 3 ] &&
        ok "actorctl tap scale.out 3: $(sed -n 2p <<<"$out")" || bad "actorctl tap scale.out 3: $out"

# --- Reload: a new plugin in the plugins folder, a component of it in the configuration.
install -m 0644 "$here/freeze.so" "$ACTORD_PLUGIN_DIR/"
mkdir -p "${trigger%/*}"
cp "$ACTORD_CONFIG" "$ACTORD_CONFIG.orig"
sed -i -e '/^components: {/a\
  beat   = { class = "core.tick"; schedule = { every_us = 10000; }; worker = 1; };\
  freeze = { class = "test.freeze"; settings = { trigger = "'"$trigger"'"; }; worker = 1; };' \
        -e '/^links = (/a\
  "beat.out -> freeze.in",' -e '/^actord: {/a\
  metrics_listen = "127.0.0.1:9464";' "$ACTORD_CONFIG"
if out=$("$ACTORD_BIN" --check-config --config "$ACTORD_CONFIG" 2>&1); then
        ok "edited configuration: $out"
else
        bad "the edited configuration does not check: $out"
fi
systemctl reload actord && ok "systemctl reload actord" || bad "systemctl reload actord failed"
# ExecReload (actord --reload) waits for actord's answer: applied by the time reload returns.
grep -qx "result=applied: 5 kept, 0 restarted, 2 started, 0 stopped" /run/actord/reload-state &&
        ok "systemctl reload returned with the reload applied" ||
        bad "systemctl reload returned before the reload was applied: $(cat /run/actord/reload-state)"
started() { logged "$pid" "^component 'freeze' \\(test.freeze, .*\\) on worker"; }
refused() { logged "$pid" "^reload( failed|: .*needs a restart)"; } # actord did not apply it
settled() { started || refused; }
wait_for 10 settled
if started; then
        ok "reload: the new component 'freeze' runs, in the same process ($pid)"
else
        bad "reload: component 'freeze' did not start; actord said:" \
                "$(journalctl _SYSTEMD_UNIT=actord.service _PID="$pid" -o cat | grep reload | tail -n 1)"
fi
[ "$(prop MainPID)" = "$pid" ] && [ "$(systemctl is-active actord)" = active ] &&
        ok "reload: still active, same MainPID" || bad "reload: the service was restarted or stopped"
# The edit also turned on the metrics over HTTP: what Prometheus would scrape, under the
# unit's sandbox (bash's /dev/tcp: the image has no HTTP client).
scrape() {
        (exec 3<>/dev/tcp/127.0.0.1/9464 || exit 1
                printf 'GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n' >&3
                timeout 5 cat <&3) 2>/dev/null
}
out=$(scrape)
[[ $(head -n 1 <<<"$out") == $'HTTP/1.1 200 OK\r' ]] &&
        grep -q '^actord_component_runs_total{component="freeze",class="test.freeze",' <<<"$out" &&
        ok "reload: metrics over HTTP on 127.0.0.1:9464 ($(grep -c '^# TYPE' <<<"$out") families)" ||
        bad "reload: no metrics over HTTP on 127.0.0.1:9464: $(head -c 300 <<<"$out")"
seven() { [[ $(prop StatusText) == "7 components on 2 workers; "[1-9]* ]]; }
wait_for 5 seven && ok "reload: StatusText: $(prop StatusText)" ||
        bad "reload: StatusText does not count the new components: '$(prop StatusText)'"
# The components the edit did not touch were started once, at start, and kept running.
again=""
for c in tick scale count slow show; do
        n=$(journalctl _SYSTEMD_UNIT=actord.service _PID="$pid" -o cat | grep -c "^component '$c' (")
        [ "$n" -eq 1 ] || again+="$c ($n starts) "
done
[ -z "$again" ] && ok "reload: the five unchanged components kept running" ||
        bad "reload: unchanged components were started again: $again"
# A configuration actord refuses makes systemctl reload fail; the pipeline goes on.
cp "$ACTORD_CONFIG" "$ACTORD_CONFIG.good"
echo "components: { oops }" >"$ACTORD_CONFIG"
if systemctl reload actord 2>/dev/null; then
        bad "systemctl reload succeeded with a broken configuration"
else
        ok "systemctl reload fails on a broken configuration"
fi
[ "$(prop MainPID)" = "$pid" ] && [ "$(systemctl is-active actord)" = active ] &&
        ok "refused reload: still active, same MainPID" ||
        bad "refused reload: the service was restarted or stopped"
if out=$("$ACTORD_CTL" reload 2>&1); then
        bad "actorctl reload succeeded with a broken configuration: $out"
else
        grep -q "^actorctl: failed: $ACTORD_CONFIG has 1 error" <<<"$out" &&
                grep -q "^$ACTORD_CONFIG:1: " <<<"$out" &&
                ok "actorctl reload: refused, naming the line: $(tail -n 1 <<<"$out")" ||
                bad "actorctl reload: refused without naming the line: $out"
fi
mv "$ACTORD_CONFIG.good" "$ACTORD_CONFIG"
out=$("$ACTORD_CTL" reload 2>&1) && [ "$out" = "applied: 7 kept, 0 restarted, 0 started, 0 stopped" ] &&
        ok "actorctl reload: $out" || bad "actorctl reload of the good configuration: $out"

# --- The NATS bridge in the unit's sandbox: the container's nats-server (Debian's unit, on
# 127.0.0.1:4222), one subject published and subscribed to by actord; the messages come back
# through the server into a channel.
if systemctl start nats-server; then ok "systemctl start nats-server"; else
        bad "systemctl start nats-server failed: $(systemctl status nats-server 2>&1 | tail -n 3)"
fi
cp "$ACTORD_CONFIG" "$ACTORD_CONFIG.before-nats"
sed -i -e '/^components: {/a\
  ntick  = { class = "core.tick"; schedule = { every_us = 10000; }; worker = 1; };\
  npub   = { class = "nats.publish"; settings = { subject = "actord.check"; }; worker = 1; };\
  nsub   = { class = "nats.subscribe"; settings = { subject = "actord.check"; }; };\
  nscale = { class = "core.scale"; settings = { factor = 1; }; };\
  ncount = { class = "core.counter"; };' \
        -e '/^links = (/a\
  "ntick.out -> npub.in", "nsub.out -> nscale.in", "nscale.out -> ncount.in",' "$ACTORD_CONFIG"
systemctl reload actord && ok "reload: a NATS publisher and subscriber" ||
        bad "reload with the NATS bridge failed: $(journalctl -u actord -o cat | tail -n 3)"
bridged() { "$ACTORD_CTL" metrics | awk '/^actord_channel_published_total\{from="nsub.out",to="nscale.in",/ { print $2 }'; }
came_back() { [ "$(bridged)" -gt 10 ] 2>/dev/null; }
if wait_for 10 came_back; then
        ok "NATS bridge: $(bridged) messages came back through nats-server into nsub.out"
else
        bad "NATS bridge: nothing came back (nsub.out published '$(bridged)'):" \
                "$(journalctl -u actord -o cat | grep -E '^n(pub|sub): ' | tail -n 3)"
fi
for want in "npub: connected to nats://127.0.0.1:4222" "nsub: subscribed to 'actord.check'"; do
        logged "$pid" "^$want" && ok "journal: $want" || bad "journal: no '$want'"
done
mv "$ACTORD_CONFIG.before-nats" "$ACTORD_CONFIG"
out=$("$ACTORD_CTL" reload 2>&1) && [ "$out" = "applied: 7 kept, 0 restarted, 0 started, 5 stopped" ] &&
        ok "actorctl reload without the bridge: $out" || bad "actorctl reload without the bridge: $out"

# --- Watchdog: a worker wedged inside a component stops the pings; systemd restarts actord.
mkdir -p /etc/systemd/system/actord.service.d
# No core file from the watchdog's SIGABRT: it could land on the host (its core_pattern).
# probe.sh tells what the unit's sandbox lets a plugin do.
# The metrics' TLS key, root's alone (0600), reaches the transient user as a credential.
printf '[Service]\nWatchdogSec=2s\nLimitCORE=0\nExecStartPre=%s\nLoadCredential=metrics.key:%s\n' \
        "$here/probe.sh" "$here/metrics.key" >/etc/systemd/system/actord.service.d/test.conf
sed -i 's|^  metrics_listen = "127.0.0.1:9464";|&\
  metrics_tls_cert = "'"$here"'/metrics.pem";\
  metrics_tls_key = "/run/credentials/actord.service/metrics.key";|' "$ACTORD_CONFIG"
systemctl daemon-reload
systemctl restart actord # now with the edited configuration, whatever reload did
pid=$(prop MainPID) restarts=$(prop NRestarts)
[ "$(stat -c %a:%U "$here/metrics.key")" = 600:root ] &&
        wait_for 5 logged "$pid" "^metrics over HTTP at https://127.0.0.1:9464/metrics" &&
        ok "credential: the TLS key (0600 root) reached actord; metrics over HTTPS" ||
        bad "credential: no metrics over HTTPS: $(journalctl -u actord -o cat | grep -m 2 -E 'metrics|credential')"
out=$(scrape)
[[ $(head -n 1 <<<"$out") != HTTP/1.1\ 200* ]] && ok "HTTPS: plain HTTP gets no metrics" ||
        bad "HTTPS: plain HTTP was answered: $(head -n 1 <<<"$out")"
[ "$(prop WatchdogUSec)" = 2s ] && ok "drop-in: WatchdogSec=2s" ||
        bad "drop-in: WatchdogUSec is $(prop WatchdogUSec)"
wait_for 5 logged "$pid" "^component 'freeze' " && ok "restart: component 'freeze' runs" ||
        bad "restart: component 'freeze' did not start"
probe=$(journalctl -u actord -o cat --no-pager | grep '^probe: ')
for want in "tcp 127.0.0.1: Connection refused" "tcp ::1: Connection refused" \
        "pinning to CPU 1: allowed"; do
        grep -qxF "probe: $want" <<<"$probe" && ok "in the unit's sandbox: $want" ||
                bad "in the unit's sandbox, not '$want': $(tr '\n' ';' <<<"$probe")"
done
touch "$trigger"
stalled() { [[ $(prop StatusText) == STALLED* ]]; }
wait_for 5 stalled && ok "frozen worker: StatusText: $(prop StatusText)" ||
        bad "frozen worker: StatusText does not say STALLED: '$(prop StatusText)'"
restarted() { [ "$(prop NRestarts)" -gt "$restarts" ] && [ "$(prop MainPID)" -ne "$pid" ] &&
        [ "$(prop MainPID)" -ne 0 ] && [ "$(systemctl is-active actord)" = active ]; }
if wait_for 15 restarted; then
        why=$(journalctl -u actord --no-pager -o cat | grep -m 1 'Watchdog timeout')
        ok "watchdog: restarted (NRestarts $(prop NRestarts), MainPID $pid -> $(prop MainPID)): $why"
else
        bad "watchdog: no restart within 15 s (NRestarts $(prop NRestarts), MainPID $(prop MainPID))"
fi
wait_for 5 flowing && ok "after the restart: $(prop StatusText)" ||
        bad "after the restart, nothing flows: '$(prop StatusText)'"

# --- Restart policy: a component that fails for good with on_failure = "exit" makes actord
# exit with status 1; the unit's Restart=on-failure starts it again.
sed -i 's|^  freeze = { class = "test.freeze"; settings = { trigger = "\([^"]*\)"; };|  freeze = { class = "test.freeze"; settings = { trigger = "\1"; fail = true; }; max_restarts = 0; on_failure = "exit";|' \
        "$ACTORD_CONFIG"
grep -q 'on_failure = "exit"' "$ACTORD_CONFIG" && systemctl reload actord &&
        ok "reload: component 'freeze' now fails with on_failure = \"exit\"" ||
        bad "reload with on_failure = \"exit\" failed: $(grep freeze "$ACTORD_CONFIG")"
pid=$(prop MainPID) restarts=$(prop NRestarts)
touch "$trigger"
if wait_for 15 restarted; then
        why=$(journalctl -u actord _PID="$pid" --no-pager -o cat | grep -m 1 "on_failure is")
        ok "on_failure = exit: restarted by systemd (NRestarts $(prop NRestarts), MainPID $pid -> $(prop MainPID)): $why"
else
        bad "on_failure = exit: no restart within 15 s (NRestarts $(prop NRestarts), MainPID $(prop MainPID))"
fi
code=$(journalctl -u actord --no-pager -o cat | grep -m 1 "Main process exited, code=exited, status=1")
[ -n "$code" ] && ok "on_failure = exit: $code" || bad "on_failure = exit: no exit status 1 in the journal"
wait_for 5 flowing && ok "after the restart: $(prop StatusText)" ||
        bad "after the restart, nothing flows: '$(prop StatusText)'"

# --- Stop.
systemctl stop actord && ok "systemctl stop actord" || bad "systemctl stop actord failed"
state=$(systemctl is-active actord)
[ "$state" = inactive ] && [ "$(prop Result)" = success ] && ok "stopped: $state, result success" ||
        bad "stopped: $state, result $(prop Result)"
finish
