#!/usr/bin/env bash
# Reproduce a row of the README's joint-pipeline table (issue 10): the real-data workflow
# (checkpoint, convert, train, evaluate of project.yml) in a fresh clone of this repository,
# with configs/bert_textcat_ner.cfg edited as the row says, scored on the test splits.
#
#   SEED=0 GF=0.1 PL=false STEPS=534 WARMUP=0.1 EVAL=267 BATCH=64 ACC=1 bash benchmarks/joint_recipes.sh WORKDIR
#
# GF: the textcat listener's grad_factor; PL: per_listener_optimizer on `bert`; BATCH: "padded"
# (the config's batches of about 2,000 padded words) or N (spacy.batch_by_sequence.v1 of N
# examples); ACC: accumulate_gradient; WARMUP: the warm-up's share of the steps (0.1 of 534 = 53).
# Defaults: the config as it is, 1,000 steps. Needs
# ../shared/datasets (or DATASETS=...). Prints ACC / ENTS_F of model-best and of model-last.
# Run it in the project's virtual environment. One torch thread; about an hour on this
# 2-core machine (per_listener: about 45% more).
set -euo pipefail
WORK=${1:?usage: bash benchmarks/joint_recipes.sh WORKDIR}
REPO=$(cd "$(dirname "$0")/.." && pwd)
D=$(cd "${DATASETS:-$REPO/../shared/datasets}" && pwd)
SEED=${SEED:-0} GF=${GF:-0.1} PL=${PL:-false} STEPS=${STEPS:-1000} WARMUP=${WARMUP:-0.1} EVAL=${EVAL:-250}
BATCH=${BATCH:-padded} ACC=${ACC:-3}
SIZE=$([ "$BATCH" = padded ] && echo 2000 || echo "$BATCH")  # project.yml's batch_size var sets the size
rm -rf "$WORK" && mkdir -p "$WORK/data"
# the test file's extension is not one the converter knows
ln -s "$D/wnut17/emerging.test.annotated" "$WORK/data/wnut17_test.conll"
git clone -q "$REPO" "$WORK/main"
cd "$WORK/main"
python - <<PY
import re
p = "configs/bert_textcat_ner.cfg"
s = open(p).read()
s, n = re.subn(r"^grad_factor = 0.1$", "grad_factor = $GF", s, count=1, flags=re.M)
assert n == 1, "the textcat listener's grad_factor line moved"
if "$PL" == "true":
    assert "per_listener_optimizer = false\n" in s
    s = s.replace("per_listener_optimizer = false\n", "per_listener_optimizer = true\n", 1)
s = re.sub(r"^accumulate_gradient = \d+$", "accumulate_gradient = $ACC", s, count=1, flags=re.M)
if "$BATCH" != "padded":
    s, n = re.subn(r"\[training.batcher\]\n(.*\n)*?get_length = null\n",
                   '[training.batcher]\n@batchers = "spacy.batch_by_sequence.v1"\nsize = $BATCH\nget_length = null\n',
                   s, count=1)
    assert n == 1
open(p, "w").write(s)
PY
git diff --stat
export HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
start=$(date +%s)
for step in checkpoint convert train evaluate; do
  python -m spacy project run $step . \
    --vars.textcat_train "$D/rotten_tomatoes/train.jsonl" --vars.textcat_dev "$D/rotten_tomatoes/validation.jsonl" \
    --vars.textcat_eval "$D/rotten_tomatoes/test.jsonl" \
    --vars.ner_train "$D/wnut17/wnut17train.conll" --vars.ner_dev "$D/wnut17/emerging.dev.conll" \
    --vars.ner_eval "$WORK/data/wnut17_test.conll" \
    --vars.train_steps "$STEPS" --vars.eval_frequency "$EVAL" --vars.warmup_fraction "$WARMUP" \
    --vars.batch_size "$SIZE" --vars.accumulate_gradient "$ACC" --vars.package_name bert_rt_wnut17 --vars.seed "$SEED"
done
echo "SECONDS $(( $(date +%s) - start ))"
spacy-bert-cls evaluate training/bert_textcat_ner/model-last corpus/converted/eval.spacy --output metrics/last.json >/dev/null
python - <<'PY'
import json
for name, path in (("model-best", "metrics/bert_textcat_ner.json"), ("model-last", "metrics/last.json")):
    scores = next(iter(json.load(open(path))["files"].values()))
    print(name, "ACC", round(scores["accuracy"], 4), "ENTS_F", round(scores["scores"]["ents_f"], 4))
PY
