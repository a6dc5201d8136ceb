#!/bin/bash
# The E9 GPU lease (docs/results/EXPERIMENTS.md), as run on one H200 in the lease's repo copy.
# The lease machine reaches no package index and no ../shared, so the run carried (ignored
# folders): gpu/groove (a copy of the Groove MIDI Dataset), gpu/cache (its window cache) and
# .whl (symusic + its two pure-Python needs, for Python 3.12); gpu/models holds round 1's exports.
# One GPU lease: 7 flat-model trainings side by side on one H200, each fitted into BUDGET min.
BUDGET=${BUDGET:-7.0}
[ -n "$LOCAL" ] || python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD/src FLATGROOVE_CACHE=$PWD/gpu/cache PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.is_available())"
VAE=src/flatgroove/presets/vae.pt; E6=src/flatgroove/presets/flat.pt
mkdir -p r
for c in ${CFG:-configs/gpu/[A-G]_*.toml}; do
  n=$(basename $c .toml)
  case $n in A_*) init=$E6 ;; *) init=$VAE ;; esac
  python3 -m flatgroove train --config $c --out r/$n --data gpu/groove --device ${DEV:-cuda} $EXTRA \
     --init-from $init --kappa 33.395 --time-budget $BUDGET --threads 2 > r/$n.out 2>&1 &
done
sleep ${WAIT:-45}; tail -n 3 r/*.out; nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv
wait
for c in ${CFG:-configs/gpu/[A-G]_*.toml}; do
  n=$(basename $c .toml)
  python3 -m flatgroove export r/$n/last.pt $OUT/$n.pt --name $n --decoding pattern:0.25:0.55 &
done
wait
tar czf $OUT/logs.tgz r/*.out r/*/log.jsonl r/*/config.json
ls -la $OUT; grep -h '"val"' r/*/log.jsonl | tail -n 3
for n in r/*.out; do echo "== $n"; grep -v '^{' $n | grep "epoch .*: val\|budget\|Error\|error" | tail -n 4; done
