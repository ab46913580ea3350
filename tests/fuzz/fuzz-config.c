/* libFuzzer harness for the configuration path: any bytes as actord.conf, through the
 * libconfig reader, our model, and the topology checks against the real core plugin. Finds
 * crashes, leaks and undefined behaviour (built with ASan+UBSan); errors are the expected
 * outcome of most inputs. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "plugin.h"
#include "topology.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct plugin_registry reg;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static int loaded;
        if (!loaded) {
                struct diag d = {0};
                const char *dir = getenv("ACTORD_FUZZ_PLUGIN_DIR");
                const char *dirs[] = {dir ? dir : ACTORD_FUZZ_PLUGIN_DIR};
                plugin_registry_load(&reg, dirs, 1, &d);
                diag_free(&d);
                loaded = 1;
        }
        int fd = memfd_create("fuzz.conf", MFD_CLOEXEC);
        if (fd < 0)
                return 0;
        if (write(fd, data, size) != (ssize_t)size) {
                close(fd);
                return 0;
        }
        char path[64];
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        struct config cfg;
        struct diag d = {0};
        /* A file with errors still yields a model to check against the plugins. */
        if (config_load(path, &cfg, &d) == 0 || cfg.path) {
                struct topology t;
                if (topology_build(&t, &cfg, &reg, &d) == 0)
                        topology_free(&t);
        }
        config_free(&cfg);
        diag_free(&d);
        close(fd);
        return 0;
}
