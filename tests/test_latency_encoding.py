import numpy as np
import pytest

from cpnjax.latency.encoding import ADJACENCY, encode, encode_all, op_counts, shipped_ops

ARCH = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|skip_connect~2|"


def test_a_known_cell_against_hand_made_matrices():
    adjacency, ops = encode(ARCH)
    # Layers: 0 input, 1 (0->1), 2 (0->2), 3 (1->2), 4 (0->3), 5 (1->3), 6 (2->3), 7 output.
    hand_adjacency = np.zeros((8, 8), int)
    for a, b in [(0, 1), (0, 2), (0, 4), (1, 3), (1, 5), (2, 6), (3, 6), (4, 7), (5, 7), (6, 7)]:
        hand_adjacency[a, b] = 1
    np.testing.assert_array_equal(adjacency, hand_adjacency)
    # Columns: none, conv1x1, conv3x3, avgpool3x3, skip, input, output.
    hand_ops = np.array(
        [
            [0, 0, 0, 0, 0, 1, 0],
            [0, 0, 1, 0, 0, 0, 0],  # conv3x3
            [1, 0, 0, 0, 0, 0, 0],  # none
            [0, 0, 0, 0, 1, 0, 0],  # skip
            [0, 0, 0, 1, 0, 0, 0],  # avgpool
            [0, 1, 0, 0, 0, 0, 0],  # conv1x1
            [0, 0, 0, 0, 1, 0, 0],  # skip
            [0, 0, 0, 0, 0, 0, 1],
        ]
    )
    np.testing.assert_array_equal(ops, hand_ops)
    np.testing.assert_array_equal(op_counts(ops), [1, 1, 1, 1, 2])


def test_vectorised_encoding_matches_one_by_one_on_every_shipped_arch():
    from cpnjax.latency import load_latency_table

    table = load_latency_table()
    ops = shipped_ops()
    assert ops.shape == (15625, 8, 7)
    np.testing.assert_array_equal(ops.sum(-1), 1)  # one operation per layer
    for i in [0, 1, 777, 15624]:
        np.testing.assert_array_equal(ops[i], encode(str(table.arch_str[i]))[1])
    # Every one of the 5^6 cells appears exactly once.
    codes = (ops[:, 1:7, :5].argmax(-1) * 5 ** np.arange(6)).sum(-1)
    assert np.unique(codes).size == 15625
    np.testing.assert_array_equal(encode_all([ARCH])[0], encode(ARCH)[1])
    assert ADJACENCY.sum() == 10


@pytest.mark.parametrize(
    "bad",
    ["", "|nor_conv_3x3~0|", ARCH.replace("avg_pool_3x3", "max_pool_3x3"), ARCH[:-1]],
)
def test_malformed_arch_strings_give_a_clear_error(bad):
    with pytest.raises(ValueError, match="NB201|unknown operation"):
        encode(bad)
