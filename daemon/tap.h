/* actorctl tap: the messages of one link, as they pass, streamed to a control-socket client
 * (ctlsock.h). A channel tap (channel.h) reads them beside the consumer, which cannot tell;
 * each is printed by its producer's class's `format` callback (or its consumer's), or as
 * bytes. Main thread. */
#ifndef ACTORD_TAP_H
#define ACTORD_TAP_H

#include <stdio.h>

#include "ctlsock.h"
#include "topology.h"

/* `spec` is "END [COUNT]": END names either end of a link ("scale.out", "count.in",
 * "merge.in[1]"), COUNT how many messages to show before the stream ends (default: no end).
 * Writes a header line to out and sets *ret; or writes why not and returns false. */
bool tap_start(const struct topology *t, const char *spec, FILE *out, struct ctl_stream *ret);

#endif
