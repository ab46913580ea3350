/* A plugin built for a future ABI major: must be refused before any of its code runs. */
#include <actord/plugin.h>

ACTORD_PLUGIN_DEFINE = {
    .abi_major = ACTORD_ABI_MAJOR + 98,
    .abi_minor = 0,
    .struct_size = sizeof(struct actord_plugin),
    .name = "badabi",
    .version = "99.0",
};
