"""`spacy-bert-cls pretrain` SIGKILLed during a checkpoint write and during training, then
resumed: the final weights equal an uninterrupted run's, bit for bit. (tests/stress runs
the same with 12 kill points.)"""
from ..stress.faults import killed_pretraining


def test_killed_twice_and_resumed_ends_bit_exact(tmp_path):
    result = killed_pretraining(tmp_path, n_kills=2, seed=3, max_steps=8, checkpoint_every=2)
    assert result["n_killed"] == 2
