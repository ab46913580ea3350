# Interface targets carrying the project's flags; linked PRIVATE, never set globally.

add_library(actord_warnings INTERFACE)
target_compile_options(actord_warnings INTERFACE
  -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 -Wundef
  -Wcast-qual -Wwrite-strings -Wvla -Wimplicit-fallthrough)

add_library(actord_hardening INTERFACE)
target_compile_options(actord_hardening INTERFACE
  -fstack-protector-strong $<$<NOT:$<CONFIG:Debug>>:-D_FORTIFY_SOURCE=2>)
target_link_options(actord_hardening INTERFACE -Wl,-z,relro,-z,now)

add_library(actord_sanitize INTERFACE)
if(ACTORD_SANITIZE)
  target_compile_options(actord_sanitize INTERFACE
    -fsanitize=${ACTORD_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  target_link_options(actord_sanitize INTERFACE -fsanitize=${ACTORD_SANITIZE})
endif()

if(ACTORD_FUZZ)
  # Coverage feedback for the fuzzer from every target, not only the harness.
  target_compile_options(actord_sanitize INTERFACE -fsanitize=fuzzer-no-link)
endif()

# Everything the project builds gets these.
function(actord_defaults target)
  target_link_libraries(${target} PRIVATE actord_warnings actord_hardening actord_sanitize)
endfunction()

# A plugin: a MODULE named NAME.so in the build's plugins folder, hidden visibility (it exports
# only its descriptor), no undefined symbols (it never links against the daemon).
function(actord_add_plugin name)
  add_library(${name} MODULE ${ARGN})
  set_target_properties(${name} PROPERTIES
    PREFIX ""
    C_VISIBILITY_PRESET hidden
    LIBRARY_OUTPUT_DIRECTORY ${ACTORD_BUILD_PLUGIN_DIR})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/include)
  actord_defaults(${name})
  if(NOT ACTORD_SANITIZE)
    # Sanitizer runtimes leave symbols for the executable to provide.
    target_link_options(${name} PRIVATE -Wl,-z,defs)
  endif()
endfunction()
