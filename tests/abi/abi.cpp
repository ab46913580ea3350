// The plugin header compiles as C++ (-pedantic-errors): plugins may be written in C++.
#include <actord/plugin.h>

static int process(struct actord_ctx *ctx, void *)
{
        struct actord_msg_info info;
        const void *m = actord_next(ctx, 0, &info);
        return m ? ACTORD_OK : ACTORD_IDLE;
}

static const struct actord_port in[] = {{"in", ACTORD_TYPE_GENERIC, 0, nullptr}};
static const actord_class sink = {sizeof(actord_class),
                                  "abi.sink",
                                  "",
                                  ACTORD_SHAPE_SINK,
                                  ACTORD_RULE_ON_MESSAGE,
                                  ACTORD_RULE_ON_MESSAGE,
                                  in,
                                  1,
                                  nullptr,
                                  0,
                                  nullptr,
                                  0,
                                  nullptr,
                                  process,
                                  nullptr,
                                  nullptr};
static const actord_class *const classes[] = {&sink};

extern "C" int abi_check_cxx();
int abi_check_cxx()
{
        return static_cast<int>(classes[0]->shape);
}
