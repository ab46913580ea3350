/* The nats plugin's descriptor: bridges between channels and NATS subjects (bridge.h). */
#include "bridge.h"

static const struct actord_class *const nats_classes[] = {
    &nats_publish_class,
    &nats_subscribe_class,
};

ACTORD_PLUGIN_DEFINE = {
    .abi_major = ACTORD_ABI_MAJOR,
    .abi_minor = ACTORD_ABI_MINOR,
    .struct_size = sizeof(struct actord_plugin),
    .name = "nats",
    .version = "1.0",
    .description = "bridges to NATS subjects (libnats): nats.publish, nats.subscribe",
    .classes = nats_classes,
    .n_classes = sizeof(nats_classes) / sizeof(nats_classes[0]),
};
