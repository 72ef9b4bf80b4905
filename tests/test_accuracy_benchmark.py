"""The metric functions of benchmarks/accuracy/score.py on hand-made predictions (no data
set, no model: fast)."""
import json

import pytest

from benchmarks.accuracy import score


def test_accuracy_is_argmax_equals_gold():
    cats = [
        {"neg": 0.2, "pos": 0.8},
        {"neg": 0.6, "pos": 0.4},
        {"neg": 0.5, "pos": 0.5},  # a tie: the first label
        {"neg": 0.1, "pos": 0.9},
    ]
    assert score.accuracy(["pos", "neg", "neg", "neg"], cats) == pytest.approx(0.75)
    assert score.argmax_label({"a": 0.3, "b": 0.3, "c": 0.1}) == "a"
    with pytest.raises(ValueError):
        score.accuracy(["pos"], cats)


def test_ece_by_hand():
    # 0.9, 0.9 -> bin 13: right 1 of 2, |0.5 - 0.9| * 2/4 = 0.2; 0.6, 0.6 -> bin 9: right 2 of 2,
    # |1 - 0.6| * 2/4 = 0.2.
    assert score.expected_calibration_error([0.9, 0.9, 0.6, 0.6], [1, 0, 1, 1]) == pytest.approx(0.4)
    # Calibrated in each bin: 0.
    assert score.expected_calibration_error([0.5, 0.5], [True, False]) == pytest.approx(0.0)
    # 1.0 goes to the last bin, 0.0 to the first; both right where they should be.
    assert score.expected_calibration_error([1.0, 0.0], [True, False]) == pytest.approx(0.0)
    # Bins are [i/15, (i+1)/15): 0.2 and 0.26 share bin 3 -> |0.5 - 0.23| = 0.27.
    assert score.expected_calibration_error([0.2, 0.26], [1, 0]) == pytest.approx(0.27)
    assert score.expected_calibration_error([], []) is None


def test_top_label_and_multilabel_ece():
    cats = [{"a": 0.8, "b": 0.2}, {"a": 0.3, "b": 0.7}]
    # Top probabilities 0.8 (right) and 0.7 (wrong), different bins: (0.2 + 0.7) / 2.
    assert score.top_label_ece(["a", "a"], cats) == pytest.approx(0.45)
    # Every label probability: 0.8 yes, 0.2 no, 0.3 no, 0.7 no -> bins 12, 3, 4, 10:
    # (0.2 + 0.2 + 0.3 + 0.7) / 4.
    assert score.multilabel_ece([["a"], []], cats, ["a", "b"]) == pytest.approx(0.35)


def test_macro_and_micro_f1_with_thresholds():
    labels = ["x", "y", "z"]
    gold = [["x"], ["x", "y"], [], ["z"]]
    cats = [
        {"x": 0.9, "y": 0.6, "z": 0.1},
        {"x": 0.4, "y": 0.7, "z": 0.2},
        {"x": 0.1, "y": 0.2, "z": 0.3},
        {"x": 0.2, "y": 0.1, "z": 0.45},
    ]
    # At 0.5: x tp1 fn1 -> 2/3; y tp1 fp1 -> 2/3; z never predicted, tp0 -> 0.
    assert score.macro_f1(gold, cats, labels, 0.5) == pytest.approx((2 / 3 + 2 / 3 + 0) / 3)
    # micro at 0.5: tp 2, fp 1, fn 2 -> 4 / 7.
    assert score.micro_f1(gold, cats, labels, 0.5) == pytest.approx(4 / 7)
    # Per-label thresholds: x 0.3 (both right), y 0.65 (right), z 0.4 (right) -> 1.
    thresholds = {"x": 0.3, "y": 0.65, "z": 0.4}
    assert score.macro_f1(gold, cats, labels, thresholds) == pytest.approx(1.0)
    # p >= threshold counts as predicted.
    assert score.label_f1(gold, cats, "z", 0.45) == pytest.approx(1.0)
    # A label nobody has and nobody predicts: F1 0 (scikit-learn's zero_division default).
    assert score.macro_f1([[]], [{"q": 0.1}], ["q"], 0.5) == 0.0


def test_tune_threshold():
    # Cuts: keep 1 -> F1 2/3, 2 -> 1/2, 3 -> 4/5 (best), 4 -> 2/3, 5 -> 4/7; halfway to the next.
    probs = [0.9, 0.8, 0.4, 0.3, 0.1]
    actual = [True, False, True, False, False]
    assert score.tune_threshold(probs, actual) == pytest.approx(0.35)
    # Order of the input does not matter.
    assert score.tune_threshold(probs[::-1], actual[::-1]) == pytest.approx(0.35)
    # Tied probabilities are never split: keep both 0.7s (2/3) rather than 1 and 0.2 (1/2).
    assert score.tune_threshold([0.7, 0.7, 0.2], [True, False, False]) == pytest.approx(0.45)
    # Best to keep everything: the lowest probability itself.
    assert score.tune_threshold([0.6, 0.2], [True, True]) == pytest.approx(0.2)
    # Keep 2 of [yes, yes, no]: F1 1, halfway between 0.5 and 0.1.
    assert score.tune_threshold([0.9, 0.5, 0.1], [True, True, False]) == pytest.approx(0.3)
    # Equal F1s (keep 1: 2/3, keep 4: 2/3): the highest threshold wins.
    assert score.tune_threshold([0.9, 0.8, 0.7, 0.6], [True, False, False, True]) == pytest.approx(0.85)
    # No positive example: the default.
    assert score.tune_threshold([0.9, 0.1], [False, False]) == 0.5


def test_tuned_thresholds_beat_one_half_on_their_own_data():
    labels = ["x", "y"]
    gold = [["x"], ["x"], [], ["y"], ["y"], []]
    cats = [
        {"x": 0.30, "y": 0.01},
        {"x": 0.25, "y": 0.02},
        {"x": 0.05, "y": 0.03},
        {"x": 0.01, "y": 0.95},
        {"x": 0.02, "y": 0.40},
        {"x": 0.03, "y": 0.90},
    ]
    thresholds = score.tune_thresholds(gold, cats, labels)
    assert thresholds["x"] == pytest.approx((0.25 + 0.05) / 2)
    assert score.macro_f1(gold, cats, labels, 0.5) < score.macro_f1(gold, cats, labels, thresholds)
    assert score.macro_f1(gold, cats, labels, thresholds) == pytest.approx((1.0 + 0.8) / 2)


def test_entity_prf_exact_match_per_sentence():
    gold = [[(0, 2, "PER")], [(1, 2, "LOC"), (3, 4, "ORG")], [(0, 1, "PER")]]
    predicted = [
        [[0, 2, "PER", 0.9]],  # right (a 4th item, the confidence, is ignored here)
        [[1, 2, "ORG"], [3, 4, "ORG"]],  # wrong label, right
        [[0, 2, "PER"]],  # wrong boundary
    ]
    result = score.entity_prf(gold, predicted)
    assert (result["tp"], result["fp"], result["fn"]) == (2, 2, 2)
    assert result["p"] == pytest.approx(0.5)
    assert result["r"] == pytest.approx(0.5)
    assert result["f"] == pytest.approx(0.5)
    # The same span in another sentence does not count.
    shifted = score.entity_prf([[(0, 2, "PER")], []], [[], [[0, 2, "PER"]]])
    assert shifted["f"] == 0.0
    assert score.entity_prf([[]], [[]])["f"] == 0.0


def test_entity_ece_uses_confidences_when_given():
    gold = [[(0, 1, "A"), (2, 3, "B")]]
    predicted = [[[0, 1, "A", 0.9], [2, 3, "A", 0.9], [4, 5, "B"]]]
    # Two entities with a confidence, both 0.9, one right: |0.5 - 0.9|.
    assert score.entity_ece(gold, predicted) == pytest.approx(0.4)
    assert score.entity_ece(gold, [[[0, 1, "A"]]]) is None


def _write_jsonl(path, records):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf8")


def test_score_all_reads_runs_and_prints_a_table(tmp_path):
    budget = {
        "datasets": {
            "tc": {"task": "textcat"},
            "ml": {"task": "textcat_multilabel"},
        }
    }
    data = tmp_path / "data"
    _write_jsonl(data / "tc" / "test.jsonl", [{"text": "a", "label": "p"}, {"text": "b", "label": "n"}])
    (data / "tc" / "meta.json").write_text(json.dumps({"labels": ["n", "p"]}))
    _write_jsonl(data / "ml" / "test.jsonl", [{"text": "a", "labels": ["x"]}, {"text": "b", "labels": []}])
    _write_jsonl(data / "ml" / "dev.jsonl", [{"text": "c", "labels": ["x"]}, {"text": "d", "labels": []}])
    (data / "ml" / "meta.json").write_text(json.dumps({"labels": ["x"]}))
    run = tmp_path / "ours" / "tc"
    _write_jsonl(run / "test.predictions.jsonl", [{"cats": {"n": 0.2, "p": 0.8}}, {"cats": {"n": 0.3, "p": 0.7}}])
    (run / "run.json").write_text(json.dumps({"train_seconds": 90, "n_train": 2}))
    run = tmp_path / "hf" / "ml"
    _write_jsonl(run / "test.predictions.jsonl", [{"cats": {"x": 0.3}}, {"cats": {"x": 0.1}}])
    _write_jsonl(run / "dev.predictions.jsonl", [{"cats": {"x": 0.35}}, {"cats": {"x": 0.05}}])
    _write_jsonl(tmp_path / "hf" / "tc" / "test.predictions.jsonl", [{"cats": {"n": 1.0, "p": 0.0}}])  # too few

    scores = score.score_all(tmp_path, data, budget)
    assert scores["systems"] == ["ours", "hf"]
    assert scores["runs"]["ours"]["tc"]["accuracy"] == pytest.approx(0.5)
    assert scores["runs"]["ours"]["tc"]["train_seconds"] == 90
    ml = scores["runs"]["hf"]["ml"]
    assert ml["macro_f1_at_0.5"] == 0.0
    assert ml["macro_f1_tuned"] == pytest.approx(1.0)  # threshold 0.2, tuned on dev
    assert "error" in scores["runs"]["hf"]["tc"]
    table = score.markdown_tables(scores, budget)
    assert "| tc | accuracy | 0.500 (1.5 min) | error |" in table
    assert "| ml | macro F1, thresholds tuned on dev | – | 1.000 |" in table
