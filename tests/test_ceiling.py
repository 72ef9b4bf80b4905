"""The speed benchmark's count of useful work (benchmarks/ceiling.py): FLOPs per piece from
the model's config. (The ceiling itself is a timing: measured by the benchmark, never here.)"""
from benchmarks.ceiling import flops_per_piece, linear_shapes

MINILM = {"hidden_size": 384, "intermediate_size": 1536, "num_hidden_layers": 6}


def test_linear_shapes_are_one_layers_linears():
    shapes = linear_shapes(MINILM)
    # query, key, value, attention output; feed-forward in and out: 1.77 M weights a layer
    assert sum(i * o * n for i, o, n in shapes) == 4 * 384 * 384 + 2 * 384 * 1536 == 1_769_472


def test_flops_per_piece_counts_linears_and_attention():
    linear = 6 * 2 * 1_769_472  # a multiply and an add per weight, 6 layers
    assert flops_per_piece(MINILM, 0) == linear == 21_233_664
    # attention: QK^T and AV, 2 x 2 x L x hidden a layer
    assert flops_per_piece(MINILM, 40) - linear == 6 * 4 * 40 * 384
