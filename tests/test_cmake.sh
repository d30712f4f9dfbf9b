#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# The CMake package: stage the library, header and lib/cmake/mpidsm under a DESTDIR,
# then build the outside CMake project (tests/cmake: find_package(mpidsm) and
# mpidsm::mpidsm, nothing else) against it and run it on 2 ranks. In both lanes, so
# the package finds MPICH's wrapper for an MPICH build (CMake's FindMPI alone would take
# the system's default mpicc). Also: a project using another MPI is refused at
# find_package. Skipped without cmake, or on a sanitizer build (the outside program
# would need the sanitizer's runtime first).
top=${top_builddir:-.}
src=${srcdir:-.}
to=${TEST_TIMEOUT:-300}
command -v cmake >/dev/null || { echo "SKIP: cmake not installed (Debian: cmake)"; exit 77; }
lib=$top/src/.libs/libmpidsm.so
if ldd "$lib" 2>/dev/null | grep -q 'libasan\|libubsan'; then
    echo "SKIP: sanitizer build"; exit 77
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/dsm-cmake.XXXXXX")
trap 'rm -rf "$work"' EXIT
stage=$work/stage
fail() { echo "FAIL: $*"; exit 1; }
make -s -C "$top" DESTDIR="$stage" install-libLTLIBRARIES install-includeHEADERS \
    install-cmakeDATA >"$work/install.log" 2>&1 || { cat "$work/install.log"; fail "staged install"; }
cfg=$(find "$stage" -name mpidsmConfig.cmake)
[[ -n $cfg && -f $(dirname "$cfg")/mpidsmConfigVersion.cmake ]] || fail "no lib/cmake/mpidsm"
[[ $cfg == */lib/cmake/mpidsm/mpidsmConfig.cmake ]] || fail "installed as $cfg"
prefix=${cfg%/lib/cmake/mpidsm/mpidsmConfig.cmake}
echo "staged prefix: $prefix"

# timeout: FindMPI runs the wrapper; nothing here may hang a make check
cm() { timeout "$to" cmake "$@" >"$work/cmake.log" 2>&1; }
cm -S "$src/tests/cmake" -B "$work/b" -DCMAKE_PREFIX_PATH="$prefix" ||
    { cat "$work/cmake.log"; fail "cmake configure"; }
cm --build "$work/b" || { cat "$work/cmake.log"; fail "cmake build"; }
# the program must link this library (not some other installed mpidsm)
ldd "$work/b/outside" | grep -q "$prefix/.*libmpidsm.so" ||
    { ldd "$work/b/outside"; fail "outside is not linked to the staged libmpidsm"; }
"$top/mpi-launch/dsmrun" -n 2 --timeout "$to" "$work/b/outside" || fail "outside program"

# A version this installation cannot satisfy, and another MPI, are refused.
sed 's/find_package(mpidsm 0.1 REQUIRED)/find_package(mpidsm 9.0 REQUIRED)/' \
    "$src/tests/cmake/CMakeLists.txt" >"$work/CMakeLists.txt"
mkdir -p "$work/v" && cp "$work/CMakeLists.txt" "$work/v/" && cp "$src/tests/outside.c" "$work/"
cm -S "$work/v" -B "$work/bv" -DCMAKE_PREFIX_PATH="$prefix" && fail "version 9.0 accepted"
grep -q 'version: 0' "$work/cmake.log" || { cat "$work/cmake.log"; fail "no version message"; }
other=$(command -v mpicc.openmpi mpicc.mpich | while read -r w; do
    [[ $(realpath "$w") == $(realpath "$(sed -n 's/^set(mpidsm_MPI_C_COMPILER "\(.*\)")$/\1/p' "$cfg")") ]] || echo "$w"
done | head -1)
if [[ -n $other ]]; then
    cm -S "$src/tests/cmake" -B "$work/bo" -DCMAKE_PREFIX_PATH="$prefix" -DMPI_C_COMPILER="$other" &&
        fail "a project using $other was accepted"
    grep -q "mpidsm was built with the MPI of" "$work/cmake.log" ||
        { cat "$work/cmake.log"; fail "no message naming the MPI"; }
    echo "ok   another MPI ($other) refused"
fi
echo "ok   outside CMake project built with find_package(mpidsm) and run"
