#!/bin/bash
# The E9 GPU lease (docs/results/EXPERIMENTS.md), as run on one H200 in the lease's repo copy.
# The lease machine reaches no package index and no ../shared, so the run carried (ignored
# folders): gpu/groove (a copy of the Groove MIDI Dataset), gpu/cache (its window cache) and
# .whl (symusic + its two pure-Python needs, for Python 3.12); gpu/models holds round 1's exports.
BUDGET=${BUDGET:-3.4}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD/src FLATGROOVE_CACHE=$PWD/gpu/cache PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2
M=gpu/models; mkdir -p r2
for c in configs/gpu/[H-M]_*.toml; do
  n=$(basename $c .toml)
  case $n in H_*|K_*) init=src/flatgroove/presets/vae.pt ;; I_*|M_*) init=$M/E_d16_w64_p16.pt ;; J_*) init=$M/B_d16_w16.pt ;; L_*) init=$M/D_d32_w16.pt ;; esac
  python3 -m flatgroove train --config $c --out r2/$n --data gpu/groove --device cuda \
     --init-from $init --kappa 33.395 --time-budget $BUDGET --threads 2 > r2/$n.out 2>&1 &
done
wait
E="python3 -m flatgroove evaluate --data gpu/groove --split validation --pairs 200 --geodesic-pairs 0 --flat-points 50 --figures 0 --threads 1"
for c in configs/gpu/[H-M]_*.toml; do
  n=$(basename $c .toml)
  (python3 -m flatgroove export r2/$n/last.pt $OUT/$n.pt --name $n --decoding pattern:0.25:0.55 && \
   OMP_NUM_THREADS=1 CUDA_VISIBLE_DEVICES= $E $OUT/$n.pt --out /tmp/p_$n > /tmp/p_$n.log 2>&1 && \
   OMP_NUM_THREADS=1 CUDA_VISIBLE_DEVICES= $E $OUT/$n.pt --decoding threshold:0.4 --out /tmp/t_$n > /tmp/t_$n.log 2>&1) &
done
wait
mkdir -p ev2; for d in /tmp/p_* /tmp/t_*; do [ -f $d/results.json ] && cp $d/results.json ev2/$(basename $d).json; done
tar czf $OUT/logs2.tgz r2/*.out r2/*/log.jsonl ev2
for n in r2/*.out; do echo "== $n"; grep -v '^{' $n | grep "epoch .*: val\|budget\|Error\|error" | tail -n 2; done
