#!/bin/bash
# One GPU lease (docs/results/EXPERIMENTS.md): the flat models of configs/gpu/$ROUND/ from the
# shipped vae, side by side on one H200, each fitted into BUDGET minutes; the validation look runs
# on the CPU sandbox afterwards (no device time spent on it). ROUND=round3 is E27 as run (from
# the 25-epoch, 192-unit vae of then); round4 (E30) starts E27's best recipes from
# the 448-unit vae of E29; round5 (prepared in session 10, not yet run) projects it to d = 20–24
# with sessions 7–8's terms from the start (EXPERIMENTS E41). E27 started from the vae shipped before E29: INIT=vae-e27.pt after
# `git show ca718bc:src/flatgroove/presets/vae.pt > vae-e27.pt`. Carry gpu/groove (a copy of the
# Groove MIDI Dataset; it parses in seconds, so no window cache) and .whl (symusic and its
# needs) as round1.sh says; the exports (threshold 0.4, the selection's decoding) and the logs
# come back under $OUT as archives. A run still going at HARD seconds is stopped and its last finished epoch exported, so
# the command ends inside the lease's 10-minute limit whatever the budget's estimate did.
# `LOCAL=1 DEV=cpu BUDGET=0.3 DATA=../shared/data/groove EXTRA="--max-steps 3"` tries it here.
ROUND=${ROUND:-round4}; INIT=${INIT:-src/flatgroove/presets/vae.pt}; BUDGET=${BUDGET:-7.0}; HARD=${HARD:-520}; T0=$SECONDS
[ -n "$LOCAL" ] || python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD/src FLATGROOVE_CACHE=$PWD/gpu/cache PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2
OUT=${OUT:-out/$ROUND}; R=runs/$ROUND; mkdir -p $OUT $R/models
DATA=${DATA:-gpu/groove}
[ -n "$LOCAL" ] || nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
pids=()
for c in ${CFG:-configs/gpu/$ROUND/*.toml}; do
  n=$(basename $c .toml)
  python3 -m flatgroove train --config $c --out $R/$n --data $DATA --device ${DEV:-cuda} \
     --init-from $INIT --kappa 33.395 --time-budget $BUDGET --threads 2 $EXTRA > $R/$n.out 2>&1 &
  pids+=($!)
done
sleep ${WAIT:-90}; tail -qn 1 $R/*.out; [ -n "$LOCAL" ] || nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader
while kill -0 "${pids[@]}" 2>/dev/null && [ $((SECONDS - T0)) -lt $HARD ]; do sleep 5; done
for p in "${pids[@]}"; do kill -0 $p 2>/dev/null && { echo "stopping $p at $((SECONDS - T0)) s"; kill $p; }; done
wait
for c in ${CFG:-configs/gpu/$ROUND/*.toml}; do
  n=$(basename $c .toml)
  python3 -m flatgroove export $R/$n/last.pt $R/models/$n.pt --name $n --decoding threshold:0.4 > $R/x_$n.log 2>&1 &
done
wait
# two models to an archive: each file that comes back must stay under 16 MiB
set -- $(cd $R/models && ls *.pt); i=0
while [ $# -gt 0 ]; do i=$((i+1)); tar czf $OUT/models_$i.tgz -C $R/models $1 $2; shift 2 2>/dev/null || shift; done
tar czf $OUT/logs.tgz $R/*.out $R/x_*.log $R/*/log.jsonl $R/*/config.json
ls -la $R/models; echo "total $((SECONDS - T0)) s"
for n in $R/*.out; do echo "== $n"; grep -v '^{' $n | grep "epoch .*: val\|budget\|Error\|error" | tail -n 2; done
