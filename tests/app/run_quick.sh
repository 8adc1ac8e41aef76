#!/usr/bin/env bash
# CTest fixture: one `feasible reproduce all --quick` run whose results app_test reads.
# Usage: run_quick.sh <feasible binary> <output folder>
set -u
app=$1 out=$2
rm -rf "$out"
start=$(date +%s)
"$app" reproduce all --quick --out "$out"
rc=$?
echo "feasible reproduce all --quick: exit $rc after $(( $(date +%s) - start )) s"
exit $rc
