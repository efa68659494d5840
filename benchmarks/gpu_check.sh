#!/usr/bin/env bash
# GPU check (issue 15): the GPU paths on one CUDA GPU in one run, each step's result as JSON in $OUT.
#
#   benchmarks/gpu_check.sh --fetch-wheels  # where pip reaches an index: carried wheels + one FASTA into .whl/
#   benchmarks/gpu_check.sh                 # on the GPU machine, with OUT set: every step, < 8 minutes
#   benchmarks/gpu_check.sh --dry-run       # on a CPU: the same steps at CPU sizes (OUT: a temporary folder)
#
# Steps, each under its own time limit and all within BUDGET_S (default 470) seconds:
#   install  the carried wheels of $WHEELS (default .whl) into a private folder put on PYTHONPATH
#   tests    the triton scan tests on CUDA (fp64/fp32 vs the reference loop, every gradient) and
#            every GPU-marked test (grouped MoE, mamba-ssm when present)           -> tests.json
#   golden   the golden small model's logits with each scan backend (within 1e-3)   -> golden.json
#   scan     scan forward / forward+backward times: triton launch settings vs torch -> scan.json
#   model    benchmarks/model.py per scan backend: tiny and base, L = 8192, 32768, bf16, batch 1;
#            base training at L = 8192 also at batch 8; tokens/s, peak memory, MFU  -> model.json
#   fsdp2    ~50 base steps, trainer=fsdp2 on 1 GPU, bf16-mixed, then `plantbimoe export` and a
#            reload compared with the checkpoint                                    -> fsdp2.json
# steps.json holds each step's status and seconds and the environment; gpu_check.log all output.
# ONLY=REGEX runs only the steps whose names match (install and environment always run), e.g.
# ONLY='^fsdp2'; FSDP2_OVERRIDES='a=b c=d' adds Hydra overrides to the fsdp2 training run.
# (7 files: the device tool returns at most 8). The wheels (hydra-core, omegaconf, antlr4, optuna
# and its dependencies, webdataset) are the packages the device image lacks.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
SELF=$ROOT/benchmarks/gpu_check.sh
WHEELS=$(realpath -m "${WHEELS:-.whl}")
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
PY=$PYTHON
CARRIED=(hydra-core omegaconf antlr4-python3-runtime webdataset braceexpand optuna alembic sqlalchemy colorlog mako)
FASTA_NAME=AthaTAIR10_chr1_GCF_000001735.4_TAIR10.1_genomic.fna.gz

step() {  # step NAME SECONDS CMD...: run CMD within min(SECONDS, time left); record the outcome
  local name=$1 limit=$2 start=$SECONDS rc status
  shift 2
  ((limit > DEADLINE - SECONDS)) && limit=$((DEADLINE - SECONDS))
  if [[ -n ${ONLY:-} && ! $name =~ ^(install|environment)$ && ! $name =~ $ONLY ]]; then
    rc=-1 status="skipped: not in ONLY"
  elif ((limit < 5)); then
    rc=-1 status="skipped: out of time"
  else
    echo "=== $name (limit ${limit}s) $(date -u +%H:%M:%S)" | tee -a "$LOG"
    timeout --kill-after=10 "$limit" bash "$SELF" --step "$@" >>"$LOG" 2>&1
    rc=$?
    case $rc in 0) status=ok ;; 124 | 137) status="timed out after ${limit}s" ;; *) status=failed ;; esac
  fi
  echo "    $name: $status ($((SECONDS - start)) s)" | tee -a "$LOG"
  printf '{"step": "%s", "status": "%s", "rc": %d, "seconds": %d}\n' "$name" "$status" "$rc" \
    $((SECONDS - start)) >>"$TMP/steps.jsonl"
  "$PY" - <<'EOF'  # steps.json after every step: a cut-short run still leaves it
import json, os
tmp, out = os.environ["GC_TMP"], os.environ["GC_OUT"]
steps = [json.loads(line) for line in open(f"{tmp}/steps.jsonl")]
env = json.load(open(f"{tmp}/env.json")) if os.path.exists(f"{tmp}/env.json") else None
mode = "dry-run" if os.environ["GC_DRY"] == "1" else "gpu"
json.dump({"mode": mode, "environment": env, "steps": steps}, open(f"{out}/steps.json", "w"), indent=2)
EOF
}

install_wheels() {
  if [[ $MODE == dry ]]; then  # only check what would be installed
    local name missing=()
    for name in "${CARRIED[@]}"; do
      compgen -G "$WHEELS/${name//-/_}-*.whl" >/dev/null || compgen -G "$WHEELS/$name-*.whl" >/dev/null ||
        missing+=("$name")
    done
    echo "wheels in $WHEELS; missing: ${missing[*]:-none}; FASTA: $(ls "$WHEELS/$FASTA_NAME" 2>/dev/null || echo none)"
    return 0
  fi
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$TMP/site" "$WHEELS"/*.whl
}

environment() {
  "$PY" - <<'EOF'
import json, os, platform, subprocess, torch
from plantbimoe.scan import resolve_backend
from plantbimoe.scan_cuda import cuda_scan_available
from plantbimoe.scan_triton import triton_available
cuda = torch.cuda.is_available()
try:
    import triton
    triton_version = triton.__version__
except ImportError:
    triton_version = None
commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
u = torch.zeros(1, device="cuda" if cuda else "cpu", dtype=torch.bfloat16)
env = {
    "python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
    "device": torch.cuda.get_device_name() if cuda else platform.machine(), "triton": triton_version,
    "triton_backend": triton_available(), "mamba_ssm": cuda_scan_available(),
    "auto_backend_bf16": resolve_backend("auto", u), "commit": commit or None,
}
print(env)
json.dump(env, open(os.path.join(os.environ["GC_TMP"], "env.json"), "w"))
EOF
}

run_tests() {
  local xdist=()
  [[ $MODE == run ]] && "$PY" -c "import xdist" 2>/dev/null && xdist=(-n 8)
  "$PY" -m pytest -q -p no:cacheprovider "${xdist[@]}" tests/scan/test_scan_triton.py -m "not gpu" \
    --junitxml="$TMP/tests_triton.xml"
  local rc1=$?
  local marked  # the files with GPU-marked tests (collecting all of tests/ needs every optional package)
  mapfile -t marked < <(grep -rl --include='test_*.py' "mark.gpu" tests)
  "$PY" -m pytest -q -p no:cacheprovider "${xdist[@]}" "${marked[@]}" -m gpu --junitxml="$TMP/tests_gpu.xml"
  local rc2=$?
  "$PY" - <<'EOF'
import json, os
import xml.etree.ElementTree as ET
tmp, report = os.environ["GC_TMP"], {}
for name in ("triton", "gpu"):
    path = f"{tmp}/tests_{name}.xml"
    if not os.path.exists(path):
        report[name] = {"error": "no report"}
        continue
    cases = ET.parse(path).getroot().iter("testcase")
    counts, failures = {"passed": 0, "failed": 0, "skipped": 0}, []
    for case in cases:
        bad = case.find("failure") if case.find("failure") is not None else case.find("error")
        kind = "failed" if bad is not None else "skipped" if case.find("skipped") is not None else "passed"
        counts[kind] += 1
        if bad is not None:
            failures.append({"test": f"{case.get('classname')}::{case.get('name')}",
                             "message": (bad.get("message") or "")[:400]})
    report[name] = {**counts, "failures": failures}
json.dump(report, open(f"{os.environ['GC_OUT']}/tests.json", "w"), indent=2)
print(json.dumps({k: {c: v[c] for c in v if c != "failures"} for k, v in report.items()}))
EOF
  ((rc1 == 0 && rc2 == 0))
}

golden() {
  "$PY" - <<'EOF'
import json, os
import numpy as np, torch
from plantbimoe import load_released_folder
from plantbimoe.scan import resolve_backend
device, folder = os.environ["GC_DEVICE"], "tests/data/reference/golden_small"
torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False  # fp32 as on CPU
model = load_released_folder(folder).to(device).eval()
ids = torch.from_numpy(np.load(f"{folder}/inputs.npy")).to(device)
want = torch.from_numpy(np.load(f"{folder}/logits.npy"))
results = {}
for backend in ("auto", "triton", "torch") if device == "cuda" else ("auto", "torch"):
    for module in model.modules():
        if hasattr(module, "scan_backend"):
            module.scan_backend = backend
    with torch.no_grad():
        err = (model(ids).logits.float().cpu() - want).abs().max().item()
    resolved = resolve_backend(backend, torch.zeros(1, device=device))
    results[backend] = {"resolved": resolved, "max_abs_err": err, "ok": err < 1e-3}
    print(backend, results[backend])
report = {"device": device, "tolerance": 1e-3, "results": results, "ok": all(r["ok"] for r in results.values())}
json.dump(report, open(f"{os.environ['GC_OUT']}/golden.json", "w"), indent=2)
raise SystemExit(0 if report["ok"] else 1)
EOF
}

scan_times() {
  "$PY" - <<'EOF'
import json, os, sys, time
import torch
sys.path.insert(0, "benchmarks")
from scan import scan_inputs  # Mamba-like inputs (S4D-real A, dt bias from Mamba's init)
from plantbimoe import scan_triton
from plantbimoe.scan import selective_scan
from plantbimoe.scan_cuda import cuda_scan_available
from plantbimoe.scan_triton import triton_available
dry = os.environ["GC_DRY"] == "1"
device = "cpu" if dry else "cuda"
b, d, n, L = (1, 8, 4, 32) if dry else (1, 1024, 16, 8192)
act = torch.float32 if dry else torch.bfloat16  # activations as under bf16 autocast; A, D, bias fp32
ins = [t.to(device, act if i in (0, 1, 3, 4, 6) else torch.float32).requires_grad_()
       for i, t in enumerate(scan_inputs(b, d, n, L, grad=False))]
gy = torch.randn(b, d, L, device=device, dtype=act)

def ms(fn):
    if dry:
        start = time.perf_counter(); fn(); return 1e3 * (time.perf_counter() - start)
    from triton.testing import do_bench
    return do_bench(fn, warmup=25, rep=200, return_mode="median")

def measure(backend):
    def fwd():
        with torch.no_grad():
            return selective_scan(*ins, backend=backend)
    def fwdbwd():
        torch.autograd.grad(selective_scan(*ins, backend=backend), ins, gy)
    y = fwd()
    f, fb = ms(fwd), ms(fwdbwd)
    return y, {"fwd_ms": f, "fwdbwd_ms": fb, "fwdbwd_tokens_per_s": b * L / fb * 1e3}

configs = [] if not triton_available() else [(16, (4, 4), (4, 4))] if dry else [
    (32, (4, 4), (4, 4)), (64, (2, 4), (2, 4)), (32, (2, 4), (2, 4)), (64, (4, 8), (4, 8))]
results, y0 = {}, None
for chunk, fwd_launch, bwd_launch in configs:
    key = f"triton chunk={chunk} fwd={fwd_launch} bwd={bwd_launch}"
    scan_triton.CHUNK, scan_triton.FORWARD_LAUNCH, scan_triton.BACKWARD_LAUNCH = chunk, fwd_launch, bwd_launch
    try:
        y, res = measure("triton")
        y0 = y if y0 is None else y0
        results[key] = {**res, "max_abs_diff_vs_first": (y.float() - y0.float()).abs().max().item()}
    except Exception as err:  # record and go on with the next setting
        results[key] = {"error": repr(err)[:400]}
    print(key, results[key], flush=True)
for backend in ["torch"] + (["cuda"] if cuda_scan_available() and not dry else []):
    results[backend] = measure(backend)[1]
    print(backend, results[backend], flush=True)
ok = [r["fwdbwd_ms"] for k, r in results.items() if k.startswith("triton") and "fwdbwd_ms" in r]
report = {"shape": {"batch": b, "d_inner": d, "d_state": n, "L": L, "activations": str(act)},
          "results": results,
          "best_triton_fwdbwd_speedup_vs_torch": results["torch"]["fwdbwd_ms"] / min(ok) if ok else None}
json.dump(report, open(f"{os.environ['GC_OUT']}/scan.json", "w"), indent=2)
raise SystemExit(0 if ok or (dry and not configs) else 1)
EOF
}

model_bench() {  # model_bench BACKEND: benchmarks/model.py with that scan backend
  local backend=$1 args
  if [[ $MODE == dry ]]; then
    args=(--device cpu --dtype float32 --sizes tiny --lengths 256 --steps 1)
  elif [[ $backend == torch ]]; then  # the chunked PyTorch scan launches thousands of kernels
    args=(--device cuda --dtype bfloat16 --sizes tiny base --lengths 8192 32768 --steps 1
      --max-step-seconds 20 --max-infer-seconds 20 --max-mem-gib 120)
  else
    args=(--device cuda --dtype bfloat16 --sizes tiny base --lengths 8192 32768
      --max-step-seconds 60 --max-infer-seconds 60 --max-mem-gib 120)
  fi
  "$PY" benchmarks/model.py "${args[@]}" --scan-backend "$backend" --out "$TMP/model_$backend.json"
}

model_batched() {  # model_batched BACKEND: base training at L=8192, batch 8 (batch 1 leaves the GPU idle)
  local backend=$1 args=(--device cuda --dtype bfloat16 --batch 8 --max-step-seconds 60 --max-mem-gib 120)
  [[ $MODE == dry ]] && args=(--device cpu --dtype float32 --batch 2 --steps 1)
  local size=base length=8192
  [[ $MODE == dry ]] && size=tiny length=256
  "$PY" benchmarks/model.py "${args[@]}" --sizes "$size" --modes train --lengths "$length" \
    --scan-backend "$backend" --out "$TMP/model_${backend}_batch8.json"
}

model_merge() {
  "$PY" - <<'EOF'
import glob, json, os
runs = {os.path.basename(p)[6:-5]: json.load(open(p)) for p in sorted(glob.glob(f"{os.environ['GC_TMP']}/model_*.json"))}
key = lambda r: (r["size"], r["mode"], r["L"])
ok = {b: {key(r): {**r, "batch": run["args"]["batch"]} for r in run["results"] if r["status"] == "ok"}
      for b, run in runs.items()}
ratios = {f"{s} {m} L={L}": r["tokens_per_s"] / ok["torch"][(s, m, L)]["tokens_per_s"]
          for (s, m, L), r in ok.get("triton", {}).items() if (s, m, L) in ok.get("torch", {})}
base_runs = [ok[b][("base", "train", 8192)] for b in ok if b.startswith("triton") and ("base", "train", 8192) in ok[b]]
base = max(base_runs, key=lambda r: r.get("mfu") or 0, default={})  # the best batch size
report = {"runs": runs, "triton_over_torch_tokens_per_s": ratios,
          "base_train_8192_triton": {k: base.get(k) for k in ("batch", "tokens_per_s", "mfu", "peak_gib")},
          "mfu_target": 3 * 0.065}
json.dump(report, open(f"{os.environ['GC_OUT']}/model.json", "w"), indent=2)
print(json.dumps({"ratios": ratios, "base_train_8192_triton": report["base_train_8192_triton"]}))
raise SystemExit(0 if runs else 1)
EOF
}

fsdp2_train() {
  local args
  if [[ $MODE == dry ]]; then
    args=(backbone=tiny trainer.accelerator=cpu trainer.precision=32-true data.fasta=embedded:A_thaliana_TAIR10
      data.window_length=256 data.batch_size=4 data.val_windows=8 trainer.max_steps=6 trainer.val_check_interval=3)
  else
    args=(backbone=base trainer.accelerator=gpu trainer.precision=bf16-mixed "data.fasta=$WHEELS/$FASTA_NAME"
      data.window_length=2048 data.batch_size=8 data.val_windows=32 trainer.max_steps=50 trainer.val_check_interval=25)
  fi
  "$PY" train.py trainer=fsdp2 trainer.devices=1 data/pretrain=arabidopsis_fasta logger=csv test=false \
    trainer.log_every_n_steps=1 "hydra.run.dir=$TMP/fsdp2" "${args[@]}" ${FSDP2_OVERRIDES:-}
}

fsdp2_export() {
  "$PY" -m plantbimoe.cli export "$TMP/fsdp2/checkpoints/last.ckpt" "$TMP/exported" --overwrite
}

fsdp2_check() {
  "$PY" - <<'EOF'
import csv, json, os
import torch
from plantbimoe import load_pretrained
tmp, device = os.environ["GC_TMP"], os.environ["GC_DEVICE"]
run, report = f"{tmp}/fsdp2", {}
try:
    rows = list(csv.DictReader(open(f"{run}/csv/metrics.csv")))
    train = [float(r["train/loss"]) for r in rows if r.get("train/loss")]
    report["train_loss"] = train
    report["val_loss"] = [float(r["val/loss"]) for r in rows if r.get("val/loss")]
    first, last = sum(train[:5]) / len(train[:5]), sum(train[-5:]) / len(train[-5:])
    report.update(train_loss_first5=first, train_loss_last5=last, loss_decreased=last < first)
    report["summary"] = json.load(open(f"{run}/summary.json"))
    checkpoint = f"{run}/checkpoints/last.ckpt"
    report["sharded_checkpoint"] = os.path.isdir(checkpoint)
    ids = torch.randint(7, 11, (2, 512), device=device)
    with torch.no_grad():
        a = load_pretrained(checkpoint, device).eval()(ids).logits
        b = load_pretrained(f"{tmp}/exported", device).eval()(ids).logits
    report["reload_max_abs_err"] = (a - b).abs().max().item()
    report["ok"] = report["loss_decreased"] and report["reload_max_abs_err"] < 1e-4
except Exception as err:  # a step before failed: say what is missing
    report.update(ok=False, error=repr(err)[:400])
json.dump(report, open(f"{os.environ['GC_OUT']}/fsdp2.json", "w"), indent=2)
print({k: v for k, v in report.items() if k not in ("train_loss", "summary")})
raise SystemExit(0 if report["ok"] else 1)
EOF
}

fetch_wheels() {  # pins: the versions installed here (the project's tested set)
  mkdir -p "$WHEELS"
  read -ra PINS < <("$PY" -c 'import importlib.metadata as m, sys
print(" ".join(f"{n}=={m.version(n)}" for n in sys.argv[1:]))' "${CARRIED[@]}") || exit 1
  for pin in "${PINS[@]}"; do  # a binary wheel for the device's CPython 3.12, else one built here
    "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
      -d "$WHEELS" "$pin" 2>/dev/null || "$PY" -m pip wheel -q --no-deps -w "$WHEELS" "$pin" || exit 1
  done
  "$PY" -c "import sys; sys.path.insert(0, 'src')
from datamodules.embedded import embedded_data_dir; print(embedded_data_dir() / '$FASTA_NAME')" |
    xargs -I{} cp {} "$WHEELS/" || exit 1
  ls -l "$WHEELS"
  echo "carry $WHEELS in the device call (keep it out of git: .git/info/exclude)"
}

if [[ ${1:-} == --step ]]; then  # one step, run by step() under its time limit
  shift
  MODE=$GC_MODE TMP=$GC_TMP OUT=$GC_OUT
  "$@"
  exit
fi

MODE=run
case "${1:-}" in
  "") ;;
  --dry-run) MODE=dry ;;
  --fetch-wheels) fetch_wheels; exit ;;
  *) sed -n '2,7p' "$0"; exit 2 ;;
esac
if [[ $MODE == dry ]]; then
  OUT=${OUT:-$(mktemp -d -t gpu_check.XXXXXX)}
  DEVICE=cpu
else
  OUT=${OUT:?set OUT to the folder for the JSON results}
  DEVICE=cuda
fi
mkdir -p "$OUT"
TMP=$(mktemp -d -t gpu_check_work.XXXXXX)
LOG=$OUT/gpu_check.log
: >"$LOG"
export PYTHONUNBUFFERED=1 GC_MODE=$MODE GC_OUT=$OUT GC_TMP=$TMP GC_DEVICE=$DEVICE GC_DRY=$([[ $MODE == dry ]] && echo 1 || echo 0)
[[ $MODE == dry ]] && export TRITON_INTERPRET=${TRITON_INTERPRET:-1}  # triton kernels on CPU tensors
export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}"
DEADLINE=$((SECONDS + ${BUDGET_S:-470}))

echo "gpu_check ($MODE): results in $OUT" | tee -a "$LOG"
step install 30 install_wheels
[[ $MODE == run ]] && export PYTHONPATH="$TMP/site:$PYTHONPATH"
step environment 30 environment
step tests 120 run_tests
step golden 40 golden
if [[ $MODE == dry ]]; then MODEL_BACKENDS=(numba torch); else MODEL_BACKENDS=(triton torch); fi
[[ $MODE == run ]] && "$PY" -c "from plantbimoe.scan_cuda import cuda_scan_available as a; raise SystemExit(not a())" &&
  MODEL_BACKENDS+=(cuda)
step "model_${MODEL_BACKENDS[0]}" 110 model_bench "${MODEL_BACKENDS[0]}"
for backend in "${MODEL_BACKENDS[@]:1}"; do step "model_$backend" 60 model_bench "$backend"; done
step model_batched 60 model_batched "${MODEL_BACKENDS[0]}"
step model 15 model_merge
step fsdp2_train 150 fsdp2_train
step fsdp2_export 30 fsdp2_export
step fsdp2 30 fsdp2_check
step scan 60 scan_times
rm -rf "$TMP"
echo "gpu_check ($MODE) done in ${SECONDS}s: $(ls "$OUT" | tr '\n' ' ')" | tee -a "$LOG"
