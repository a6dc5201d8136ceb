#!/bin/bash
# Prepared for the next GPU lease (not yet run; EXPERIMENTS E19): 7 wider-decoder flat models
# from the vae side by side on one H200, each fitted into BUDGET minutes, then each evaluated on
# validation (pattern 0.25–0.55 and threshold 0.4) on the lease's CPU cores. Carry gpu/groove (a
# copy of the Groove MIDI Dataset), gpu/cache and .whl as round1.sh says; the exports, logs and
# results come back under $OUT. `LOCAL=1 DEV=cpu BUDGET=0.3 DATA=../shared/data/groove CFG=configs/gpu/round3/W1_*.toml`
# tries it here (done on this CPU: 1 epoch, export, both evaluations, 12 min).
BUDGET=${BUDGET:-7.0}
[ -n "$LOCAL" ] || python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD/src FLATGROOVE_CACHE=$PWD/gpu/cache PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2
OUT=${OUT:-out/round3}; mkdir -p $OUT runs/round3
DATA=${DATA:-gpu/groove}
for c in ${CFG:-configs/gpu/round3/*.toml}; do
  n=$(basename $c .toml)
  python3 -m flatgroove train --config $c --out runs/round3/$n --data $DATA --device ${DEV:-cuda} \
     --init-from src/flatgroove/presets/vae.pt --kappa 33.395 --time-budget $BUDGET --threads 2 > runs/round3/$n.out 2>&1 &
done
wait
E="python3 -m flatgroove evaluate --data $DATA --split validation --pairs 200 --geodesic-pairs 0 --flat-points 50 --figures 0 --threads 1"
for c in ${CFG:-configs/gpu/round3/*.toml}; do
  n=$(basename $c .toml)
  (python3 -m flatgroove export runs/round3/$n/last.pt $OUT/$n.pt --name $n --decoding pattern:0.25:0.55 && \
   OMP_NUM_THREADS=1 CUDA_VISIBLE_DEVICES= $E $OUT/$n.pt --out runs/round3/p_$n > runs/round3/p_$n.log 2>&1 && \
   OMP_NUM_THREADS=1 CUDA_VISIBLE_DEVICES= $E $OUT/$n.pt --decoding threshold:0.4 --out runs/round3/t_$n > runs/round3/t_$n.log 2>&1) &
done
wait
tar czf $OUT/logs3.tgz runs/round3/*.out runs/round3/*/log.jsonl runs/round3/*/results.json
for n in runs/round3/*.out; do echo "== $n"; grep -v '^{' $n | grep "epoch .*: val\|budget\|Error\|error" | tail -n 2; done
