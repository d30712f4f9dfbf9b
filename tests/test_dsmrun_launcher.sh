#!/bin/bash
# dsmrun uses the launcher of the MPI this build was configured with (issue 12 item 12):
#  - configure resolved MPIEXEC (e.g. MPIEXEC=mpiexec.mpich) to an absolute path, and
#    `dsmrun --dry-run` launches with it, not with whatever mpiexec is first on PATH;
#  - a launcher of the other MPI (--mpiexec or $MPIEXEC) is refused with status 2 and a
#    message naming both MPIs: its ranks would start as singletons;
#  - a launcher of the right MPI given by a bare name is resolved on PATH; a name that
#    is not there is refused with status 2.
# The "other MPI" is a stub that answers --version as that MPI's launcher does (Open
# MPI: "mpiexec (OpenRTE) 4.1.4"; MPICH: "HYDRA build details"), plus the real one
# when it is installed.
set -u
. "$(dirname "$0")/lib.sh"
top=$(cd "${top_builddir:-.}" && pwd)
dsmrun=$top/mpi-launch/dsmrun
work=$(mktemp -d "${TMPDIR:-/tmp}/dsmrun-launcher.XXXXXX")
trap 'rm -rf "$work"' EXIT
# dsmrun without the caller's launcher choice or Slurm allocation, bounded in time
drun() { timeout "$(secs 60)" env -u MPIEXEC -u SLURM_JOB_ID "$dsmrun" "$@"; }
mpi_of() { # mpi_of LAUNCHER: openmpi, mpich or unknown, from its --version
    local v
    v=$(timeout "$(secs 30)" "$1" --version 2>&1 | head -5)
    if grep -q -e "Open MPI" -e "OpenRTE" <<<"$v"; then echo openmpi
    elif grep -q -i -e "HYDRA" -e "mpich" <<<"$v"; then echo mpich
    else echo unknown; fi
}

built=$(drun --info 2>/dev/null | sed -n 's/.*built for: //p')
case $built in
    openmpi) other=mpich ;;
    mpich) other=openmpi ;;
    *) echo "SKIP: this build's MPI is '$built', neither Open MPI nor MPICH"; exit 77 ;;
esac
echo "this build: $built; the other MPI: $other"

# Stub launchers: each prints what the real one prints for --version, and for anything
# else says it ran (a dry run never runs it).
mkdir -p "$work/bin"
stub() { # stub NAME VERSION-TEXT
    printf '#!/bin/sh\nif [ "$1" = --version ]; then echo "%s"; exit 0; fi\necho "stub ran"\n' \
        "$2" >"$work/bin/$1"
    chmod +x "$work/bin/$1"
}
stub launch-openmpi "mpiexec (OpenRTE) 4.1.4"
stub launch-mpich "HYDRA build details:"

echo "== the configured launcher"
configured=$(drun --info 2>/dev/null | sed -n 's/^configured launcher: //p')
show "configured launcher: ${configured:-(none)}"
check "configure recorded an absolute path" test "${configured:0:1}" == /
check "it is executable" test -x "$configured"
check "it belongs to $built" test "$(mpi_of "$configured")" == "$built"
out=$(drun --dry-run -n 2 /bin/true 2>&1)
show "$out"
launcher=$(awk '{print $1; exit}' <<<"$out")
check "--dry-run launches with it ($launcher)" test "$launcher" == "$configured"
check "--dry-run's launcher belongs to $built" test "$(mpi_of "$launcher")" == "$built"

echo "== a launcher of the other MPI is refused"
refused() { # refused ARGS...: dsmrun ARGS must exit 2 naming both MPIs
    out=$("$@" 2>&1)
    local rc=$?
    show "$out"
    [[ $rc == 2 ]] && grep -q "dsmrun: .*$other.*$built" <<<"$out" && ! grep -q "stub ran" <<<"$out"
}
check "--mpiexec (stub $other launcher)" \
    refused drun --mpiexec "$work/bin/launch-$other" --dry-run -n 2 /bin/true
check "MPIEXEC= (stub $other launcher)" \
    refused timeout "$(secs 60)" env -u SLURM_JOB_ID MPIEXEC="$work/bin/launch-$other" "$dsmrun" -n 2 /bin/true
check "a real run, not only --dry-run" \
    refused drun --mpiexec "$work/bin/launch-$other" -n 2 /bin/true
real=mpiexec.$other
if command -v "$real" >/dev/null; then
    check "--mpiexec $real (the real one, by bare name)" refused drun --mpiexec "$real" --dry-run -n 2 /bin/true
fi

echo "== a launcher of this MPI by bare name"
out=$(PATH=$work/bin:$PATH drun --mpiexec "launch-$built" --dry-run -n 2 /bin/true 2>&1)
rc=$?
show "$out"
check "accepted (status $rc)" test "$rc" == 0
check "resolved to its path on PATH" grep -q "^$work/bin/launch-$built " <<<"$out"
out=$(drun --mpiexec no-such-launcher-$$ --dry-run -n 2 /bin/true 2>&1)
rc=$?
show "$out"
check "a name not on PATH is refused (status $rc)" test "$rc" == 2
check "... saying so" grep -q "no-such-launcher-$$.*not found" <<<"$out"
exit $fail
