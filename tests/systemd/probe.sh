#!/bin/bash
# ExecStartPre= of actord in the watchdog part of the test (a drop-in): runs inside the unit's
# sandbox, as its user, and says in the journal what a plugin could do there.
for addr in 127.0.0.1 ::1; do
        # Nothing listens on port 9: "refused" means the socket was allowed and the connect tried.
        err=$( (exec 3<>"/dev/tcp/$addr/9") 2>&1)
        echo "probe: tcp $addr: ${err##*: }"
done
taskset -c 1 true && echo "probe: pinning to CPU 1: allowed"
exit 0
