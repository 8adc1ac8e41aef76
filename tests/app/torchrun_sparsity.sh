#!/usr/bin/env bash
# `feasible reproduce sparsity` under torchrun with 2 ranks on loopback (one epoch per run, about
# a minute on 2 cores): both ranks exit 0, rank 0 writes the report, and the report and
# results.json say world size 2. Skipped (exit 77) without Debian's python3-torch (torchrun).
# Usage: torchrun_sparsity.sh <feasible binary> <output dir>
set -euo pipefail
app=$1
out=$2
python=/usr/bin/python3
if ! "$python" -c 'import torch.distributed.run' 2>/dev/null; then
  echo "skipped: $python has no torch.distributed.run (Debian package python3-torch)"
  exit 77
fi
rm -rf "$out"
# --redirects 1 --tee 1: Debian's torchrun (PyTorch 1.13) cannot parse the default "0" under
# Python 3.11 (Std.from_str returns None); redirecting stdout to its log and teeing it works.
# A free port for the rendezvous: Debian's torchrun's --standalone always uses localhost:29400,
# which two concurrent runs would share.
port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$python" -m torch.distributed.run --no_python --nnodes 1 --nproc_per_node 2 \
  --rdzv_backend c10d --rdzv_endpoint "127.0.0.1:$port" --redirects 1 --tee 1 \
  "$app" reproduce sparsity --quick --epochs 1 --threads 1 --quiet --out "$out"
grep -q '"world_size": 2' "$out/results.json" || { echo "results.json lacks world_size 2"; exit 1; }
grep -q 'world size 2 (data-parallel over c10d Gloo)' "$out/report.md" ||
  { echo "report.md does not say world size 2"; exit 1; }
echo "ok: $out/report.md says world size 2"
