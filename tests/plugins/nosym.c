/* A shared object without the descriptor symbol. */
#include <actord/plugin.h>

ACTORD_EXPORT int not_an_actord_plugin(void);
int not_an_actord_plugin(void)
{
        return 42;
}
