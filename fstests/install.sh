#!/bin/sh
# Install fsrace's fstests tests into an fstests checkout (built with make):
# tests/generic/9xx and their expected output, and the helper they run, built as
# src/t_mmap_fault_op_race. Then, in the checkout:  ./check generic/900 ...
set -eu
if [ $# -ne 1 ] || [ ! -x "$1/check" ] || [ ! -d "$1/tests/generic" ]; then
    echo "usage: $0 FSTESTS_CHECKOUT   (a directory holding fstests' check)" >&2
    exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
${CC:-cc} -O2 -Wall -pthread ${LDFLAGS:-} -o "$1/src/t_mmap_fault_op_race" \
    "$here/src/t_mmap_fault_op_race.c"
for t in "$here"/tests/generic/[0-9]*; do
    cp "$t" "$1/tests/generic/"
done
# check finds tests through each directory's group list, made from their _begin_fstest lines
make -s -C "$1/tests/generic" group.list
echo "installed $(ls "$here"/tests/generic/[0-9]* | grep -vc '\.out$') tests into $1/tests/generic"
