#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# The man pages made by man/mangen.pl at build time (issue 19):
# - every function libmpidsm.so exports (nm: the truth, not the header's parser) has a
#   page man3/<function>.3 that names it, and no page names anything else;
# - mpidsm(7) has the consistency model and every DSM_* variable of src/env_defs.h;
# - `man -l` renders every page without a warning (man-db's --warnings set);
# - mangen.pl refuses a header with an undocumented function.
# Skipped without man-db (Debian: man-db, which brings groff-base).
top=${top_builddir:-.}
src=${srcdir:-.}
command -v man >/dev/null || { echo "SKIP: man not installed (Debian: man-db)"; exit 77; }
dir=$top/man
lib=$top/src/.libs/libmpidsm.so
work=$(mktemp -d "${TMPDIR:-/tmp}/dsm-man.XXXXXX")
trap 'rm -rf "$work"' EXIT
bad=0
fail() { echo "FAIL: $*"; bad=1; }

nm -D --defined-only "$lib" | awk '$2 == "T" && $3 ~ /^dsm_/ {print $3}' | sort >"$work/syms"
[[ -s $work/syms ]] || { echo "FAIL: no dsm_ symbols in $lib"; exit 1; }
(cd "$dir/man3" && ls -- *.3 2>/dev/null) | sed 's/\.3$//' | sort >"$work/pages"
comm -23 "$work/syms" "$work/pages" | sed 's/^/FAIL: no page for /'
comm -13 "$work/syms" "$work/pages" | sed 's/^/FAIL: a page for what the library does not export: /'
cmp -s "$work/syms" "$work/pages" || bad=1
echo "$(wc -l <"$work/syms") exported functions, $(wc -l <"$work/pages") pages in man3"
# one awk over all pages (a grep per page is slow on a loaded machine)
awk 'FNR == 1 {f = FILENAME; sub(/.*\//, "", f); sub(/\.3$/, "", f); want[f] = 1}
     index($0, f " \\- ") == 1 {ok[f] = 1}
     END {for (f in want) if (!ok[f]) print "FAIL: man3/" f ".3 has no NAME line for " f}' \
    "$dir"/man3/*.3 >"$work/names"
[[ -s $work/names ]] && { cat "$work/names"; bad=1; }

m7=$dir/man7/mpidsm.7
[[ -f $m7 ]] || { echo "FAIL: no man7/mpidsm.7"; exit 1; }
grep -q '^\.SH CONSISTENCY MODEL' "$m7" || fail "mpidsm.7 has no CONSISTENCY MODEL section"
sed -n 's/^DSM_ENV(\([A-Z_0-9]*\),.*/DSM_\1/p' "$src/src/env_defs.h" >"$work/vars"
[[ -s $work/vars ]] || fail "no variables read from env_defs.h"
for v in $(cat "$work/vars"); do
    sed -n '/^\.SH ENVIRONMENT/,/^\.SH /p' "$m7" | grep -qx "\.B $v" ||
        fail "mpidsm.7's ENVIRONMENT lacks $v"
done
echo "$(wc -l <"$work/vars") DSM_* variables in mpidsm(7)"

# All pages in one man run (fast); on a warning, page by page to name the culprit.
render() { MANWIDTH=80 LC_ALL=C.UTF-8 man --warnings -l "$@" 2>"$work/err" </dev/null; }
n=$(render "$dir"/man3/*.3 "$m7" | grep -c '^NAME')
if [[ -s $work/err || $n != $(($(wc -l <"$work/pages") + 1)) ]]; then
    for f in "$dir"/man3/*.3 "$m7"; do
        render "$f" >/dev/null
        [[ ! -s $work/err ]] || fail "man -l $f: $(head -3 "$work/err")"
    done
    [[ $n == $(($(wc -l <"$work/pages") + 1)) ]] || fail "man -l rendered $n pages"
fi
echo "man -l rendered $n pages"

# The generator: a function without a doc comment is an error naming it.
perl -0pe 's{/\*\* \\brief Copy len bytes from src to g\..*?\*/\n}{}s' \
    "$src/include/mpidsm.h" >"$work/h.h"
grep -q 'brief Copy len bytes from src to g' "$work/h.h" && fail "test could not remove dsm_put's doc"
if perl "$src/man/mangen.pl" --header "$work/h.h" --env /dev/null --out "$work/o" 2>"$work/gen"; then
    fail "mangen.pl accepted an undocumented dsm_put"
else
    grep -q 'dsm_put has no doc comment' "$work/gen" || fail "mangen.pl: $(cat "$work/gen")"
fi
[[ $bad == 0 ]] && echo "ok   man pages"
exit $bad
