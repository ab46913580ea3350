#!/bin/sh
# The manual pages of BUILD_DIR render without a warning, and document every option that the
# programs' --help lists and every command that actorctl --help lists.
set -u
build=$1
fail=0
for page in "$build/man/actord.8" "$build/man/actorctl.1"; do
        if ! warnings=$(groff -man -ww -z -Tutf8 "$page" 2>&1); then
                echo "FAIL $page: groff failed: $warnings"
                fail=1
        elif [ -n "$warnings" ]; then
                echo "FAIL $page: $warnings"
                fail=1
        fi
done
# documents PAGE WORD: the page has WORD, its dashes written as groff's \-.
documents() {
        grep -qF -- "$(printf '%s' "$2" | sed 's/-/\\-/g')" "$1"
}
for pair in "daemon/actord man/actord.8" "ctl/actorctl man/actorctl.1"; do
        set -- $pair
        for opt in $("$build/$1" --help | grep -o -- '--[a-z][a-z-]*' | sort -u); do
                documents "$build/$2" "$opt" || {
                        echo "FAIL $2 does not document $opt"
                        fail=1
                }
        done
done
for cmd in $("$build/ctl/actorctl" --help | sed -n '/^Commands:/,/^$/p' | awk '/^  [a-z]/ { print $1 }'); do
        grep -q "^\.BI\{0,1\} $cmd\( \|$\)" "$build/man/actorctl.1" || {
                echo "FAIL actorctl.1 does not document the command $cmd"
                fail=1
        }
done
[ "$fail" -eq 0 ] && echo "manual pages: clean, every option and command documented"
exit "$fail"
