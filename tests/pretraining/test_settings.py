"""[training]'s spaCy words (learn_rate, grad_clip, accumulate_gradient, eval_frequency):
the old names still work, each with a warning that names old and new; both names of one
setting is an error."""
import subprocess
import sys
from pathlib import Path

import pytest
from thinc.api import Config

from spacy_bert_cls.pretraining.settings import RENAMED, Settings

ROOT = Path(__file__).resolve().parents[2]
RAW = ROOT / "corpus" / "raw" / "pretrain.txt"
NEW_VALUES = {"learn_rate": 0.001, "grad_clip": 0.5, "accumulate_gradient": 2, "eval_frequency": 7}


def _config(**training) -> Config:
    config = Config().from_disk(ROOT / "configs" / "pretrain.cfg")
    config["paths"]["raw"] = str(RAW)
    for new in RENAMED.values():
        del config["training"][new]
    config["training"].update(training)
    return config


def test_shipped_configs_use_the_new_names():
    for name in ("pretrain.cfg", "pretrain_continue.cfg"):
        training = Config().from_disk(ROOT / "configs" / name)["training"]
        assert set(RENAMED.values()) <= set(training) and not set(RENAMED) & set(training), name


def test_old_names_still_work_and_warn(caplog):
    old_values = {old: NEW_VALUES[new] for old, new in RENAMED.items()}
    with caplog.at_level("WARNING"):
        old = Settings.from_config(_config(**old_values), source="old.cfg")
    assert old == Settings.from_config(_config(**NEW_VALUES), source="new.cfg")
    assert (old.learn_rate, old.grad_clip, old.accumulate_gradient, old.eval_frequency) == (0.001, 0.5, 2, 7)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == len(RENAMED)
    for old_name, new_name in RENAMED.items():
        assert any(f"old.cfg: [training] {old_name} is deprecated: call it {new_name}" in w for w in warnings)


def test_new_names_do_not_warn(caplog):
    with caplog.at_level("WARNING"):
        Settings.from_config(_config(**NEW_VALUES))
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


@pytest.mark.parametrize("old", sorted(RENAMED))
def test_old_and_new_name_together_is_an_error(old):
    new = RENAMED[old]
    with pytest.raises(ValueError, match=rf"both.cfg: \[training\] sets both {old} and {new}.*keep {new} only"):
        Settings.from_config(_config(**{old: NEW_VALUES[new], new: NEW_VALUES[new]}), source="both.cfg")


def test_a_wrong_value_under_an_old_name_is_reported_under_that_name():
    with pytest.raises(ValueError, match=r"\[training\] learning_rate must be float, got 'fast'"):
        Settings.from_config(_config(learning_rate="fast"))
    with pytest.raises(ValueError, match=r"eval_every must be at least 1, got 0"):
        Settings.from_config(_config(eval_every=0))


def test_the_cli_shows_the_warning(tmp_path):
    """A user sees it: printed by the pretrain command, not a silent DeprecationWarning."""
    config = _config(eval_every=5, batch_sise=8)  # the unknown key stops the run before any work
    path = tmp_path / "old.cfg"
    config.to_disk(path)
    result = subprocess.run([sys.executable, "-m", "spacy_bert_cls", "pretrain", str(path), str(tmp_path / "out")],
                            capture_output=True, text=True)
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 1, output
    assert "[training] eval_every is deprecated: call it eval_frequency" in output
    assert "unknown setting(s) in [training]: batch_sise" in output


@pytest.mark.parametrize("key,value,message", [
    ("mlm_probability", 1.5, r"\[objective\] mlm_probability: Input should be less than 1, got 1.5"),
    ("mlm_probability", 0, r"\[objective\] mlm_probability: Input should be greater than 0, got 0"),
    ("short_seq_probability", -1, r"\[objective\] short_seq_probability: .*greater than or equal to 0, got -1"),
])
def test_a_rate_out_of_range_is_refused_with_the_settings(key, value, message):
    # before anything is written: the vocabulary is learnt only after the settings are read
    config = _config()
    config["objective"][key] = value
    with pytest.raises(ValueError, match=message):
        Settings.from_config(config)


@pytest.mark.parametrize("section,key,value,message", [
    ("training", "learn_rate", -1, r"\[training\] learn_rate: Input should be greater than 0, got -1"),
    ("training", "weight_decay", -0.1, r"\[training\] weight_decay: .*greater than or equal to 0"),
    ("training", "warmup_steps", -5, r"\[training\] warmup_steps: .*greater than or equal to 0"),
    ("objective", "max_length", 2, r"\[objective\] max_length: .*greater than or equal to 8"),
    ("tokenizer", "min_frequency", 0, r"\[tokenizer\] min_frequency: .*greater than or equal to 1"),
])
def test_other_values_out_of_range_are_refused_with_the_settings(section, key, value, message):
    """learn_rate -1 failed only after OUTPUT/vocab was written (a later run then reused it)."""
    config = _config()
    config[section][key] = value
    with pytest.raises(ValueError, match=message):
        Settings.from_config(config)


def test_max_length_over_the_models_positions_is_refused():
    """It raised max_position_embeddings to max_length, silently."""
    config = _config()
    config["objective"]["max_length"] = 1000
    with pytest.raises(ValueError, match="max_length 1000 is over \\[model\\] max_position_embeddings 128"):
        Settings.from_config(config)
