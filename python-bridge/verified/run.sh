#!/usr/bin/env bash
# GPU checks of the python-bridge verifier on checkpoints written by `kiln compile` (copied here, compiled on the CPU
# machine): one GPU in float16/bfloat16, and tensor parallel tp=2 over NCCL with one process per GPU.
set -u
cd "$(dirname "$0")/../python-bridge"
mkdir -p "$OUT"
{ nvidia-smi -L; python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__, 'cuda', torch.version.cuda)"; } > "$OUT/env.txt" 2>&1
for f in gpt2 gptj llama llama3_gqa; do
  for d in float16 bfloat16; do
    python3 -m kiln_bridge verify --ckpt ../gpu-run/${f}_tp1_$d --hf ../test/fixtures/hf/$f --device cuda --dtype $d --json > "$OUT/${f}_tp1_$d.json" 2> "$OUT/${f}_tp1_$d.err"; echo "$f tp1 $d rc=$?"
  done
  for d in float32 float16 bfloat16; do
    torchrun --standalone --nproc-per-node 2 -m kiln_bridge verify --ckpt ../gpu-run/${f}_tp2_$d --hf ../test/fixtures/hf/$f --device cuda --dtype $d --json > "$OUT/${f}_tp2_$d.json" 2> "$OUT/${f}_tp2_$d.err"; echo "$f tp2 $d nccl rc=$?"
  done
done 2>&1 | tee "$OUT/summary.txt"
cd "$OUT" && tar czf results.tgz *.json *.err *.txt && rm -f *.json *.err
