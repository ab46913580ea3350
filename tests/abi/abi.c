/* The plugin header compiles as strict C11 (-pedantic-errors) and a plugin descriptor can be
 * written with it; built as part of the test suite. */
#include <actord/plugin.h>
#include <stddef.h>

_Static_assert(offsetof(struct actord_plugin, abi_major) == 0, "descriptors start with the ABI");
_Static_assert(offsetof(struct actord_plugin, struct_size) == 8, "then the struct size");
_Static_assert(offsetof(struct actord_host, struct_size) == 8, "the host table too");
_Static_assert(offsetof(struct actord_class, struct_size) == 0, "classes start with their size");

int abi_check_c(void);
int abi_check_c(void)
{
        return ACTORD_ABI_MAJOR;
}
