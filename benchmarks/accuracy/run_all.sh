#!/usr/bin/env bash
# The whole accuracy benchmark: prepare the data, train and predict every system on every
# data set, one run at a time, then score. Resumes: a run whose run.json and
# test.predictions.jsonl exist is skipped (delete its folder to redo it).
#
#   bash benchmarks/accuracy/run_all.sh
#
# Settings (environment variables):
#   RESULTS   where everything goes (default benchmarks/results/accuracy): data/, <system>/<dataset>/,
#             logs/<system>-<dataset>.log, results.json
#   DATASETS  data sets, in order (default: all five of budget.json)
#   SYSTEMS   systems, in order (default: ours spacy_listener spacy_transformers hf)
#   THREADS   torch threads per run (default 2); OMP_NUM_THREADS follows it unless set
#   LIMIT     smoke runs only: prepare at most LIMIT examples per split (default 0: the contract's data)
#   EPOCHS    smoke runs only: override the budget's epochs (default: budget.json's)
set -euo pipefail
cd "$(dirname "$0")/../.."

RESULTS="${RESULTS:-benchmarks/results/accuracy}"
DATA="$RESULTS/data"
LOGS="$RESULTS/logs"
DATASETS="${DATASETS:-rotten_tomatoes trec goemotions wnut17 bc5cdr}"
SYSTEMS="${SYSTEMS:-ours spacy_listener spacy_transformers hf}"
THREADS="${THREADS:-2}"
LIMIT="${LIMIT:-0}"
EPOCHS="${EPOCHS:-}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$THREADS}"
mkdir -p "$LOGS"

say() { echo "[$(date '+%F %T')] $*"; }

# shellcheck disable=SC2086
python -m benchmarks.accuracy.prepare $DATASETS --out "$DATA" --limit "$LIMIT" 2>&1 | tee "$LOGS/prepare.log"

common=(--threads "$THREADS")
if [[ -n "$EPOCHS" ]]; then common+=(--epochs "$EPOCHS"); fi

failed=()
start_all=$SECONDS
for dataset in $DATASETS; do
    for system in $SYSTEMS; do
        out="$RESULTS/$system/$dataset"
        log="$LOGS/$system-$dataset.log"
        if [[ -f "$out/run.json" && -f "$out/test.predictions.jsonl" ]]; then
            say "skip $system / $dataset: $out/run.json exists"
            continue
        fi
        say "run $system / $dataset (log: $log)"
        start=$SECONDS
        if [[ "$system" == hf ]]; then
            cmd=(python -m benchmarks.accuracy.run_hf "$dataset" --data-dir "$DATA" --out-dir "$RESULTS/hf" "${common[@]}")
        else
            cmd=(python -m benchmarks.accuracy.run_spacy "$system" "$dataset" --results "$RESULTS" --data "$DATA" "${common[@]}")
        fi
        if "${cmd[@]}" >"$log" 2>&1; then
            say "done $system / $dataset in $(( (SECONDS - start) / 60 )) min"
        else
            say "FAILED $system / $dataset after $(( (SECONDS - start) / 60 )) min: tail of $log:"
            tail -n 20 "$log" || true
            failed+=("$system/$dataset")
        fi
    done
done
say "all runs: $(( (SECONDS - start_all) / 60 )) min"

python -m benchmarks.accuracy.score --results "$RESULTS" --data "$DATA" 2>&1 | tee "$LOGS/score.log"

if (( ${#failed[@]} )); then
    say "failed runs: ${failed[*]}"
    exit 1
fi
