/* actord-bench: the project's benchmarks, one subcommand each. */
#include "bench.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
        fprintf(f, "usage: actord-bench channel [--json] [--reps N] [--quick] [--cpus A,B]\n"
                   "                           [--impls L]\n"
                   "       actord-bench pipeline [--json] [--quick] [--cpus A,B]\n"
                   "       actord-bench nats [--json] [--quick] [--reps N]\n"
                   "  channel   actord's channel against SPSC queues from other projects and\n"
                   "            the hardware's cache-line transfer\n"
                   "  pipeline  per-hop latency through the scheduler, against the cache-line\n"
                   "            transfer and an eventfd wake-up\n"
                   "  nats      the NATS bridge against libnats used directly, through a\n"
                   "            nats-server it starts; see docs/benchmarks.md\n");
}

int main(int argc, char **argv)
{
        if (argc < 2) {
                usage(stderr);
                return 2;
        }
        if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
                usage(stdout);
                return 0;
        }
        if (!strcmp(argv[1], "channel"))
                return bench_channel_main(argc - 1, argv + 1);
        if (!strcmp(argv[1], "pipeline"))
                return bench_pipeline_main(argc - 1, argv + 1);
        if (!strcmp(argv[1], "nats")) {
#ifdef BENCH_HAVE_NATS
                return bench_nats_main(argc - 1, argv + 1);
#else
                fprintf(stderr, "actord-bench: built without nats-server (Debian's nats-server): "
                                "no nats benchmark\n");
                return 2;
#endif
        }
        fprintf(stderr, "actord-bench: unknown benchmark '%s'\n", argv[1]);
        usage(stderr);
        return 2;
}
