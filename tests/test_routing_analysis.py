"""Routing statistics on hand-made routing tables with known answers, and routing tables / calibration of models."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from cplir.analysis.routing import (block_statistics, collect_routing, entropy_bits, mutual_information_bits,
                                    normalised_mutual_information, routing_calibration, selection_matrix)
from cplir.models import PromptedBackbone, build_model


def test_entropy_in_bits_of_uniform_one_hot_and_mixed_distributions():
    assert entropy_bits(np.full(5, 0.2)) == pytest.approx(math.log2(5))
    assert entropy_bits(np.array([0.0, 1.0, 0.0])) == 0.0  # 0·log 0 counts as 0
    assert entropy_bits(np.array([0.5, 0.25, 0.25])) == pytest.approx(1.5)
    assert entropy_bits(np.array([2.0, 1.0, 1.0])) == pytest.approx(1.5)  # counts are normalised first
    np.testing.assert_allclose(entropy_bits(np.array([[0.5, 0.5], [1.0, 0.0]])), [1.0, 0.0])


def test_uniform_routing_that_ignores_the_task():
    # Two tasks, P = 4: every image routes uniformly and each task selects every component equally often.
    tasks = ["rain"] * 4 + ["haze"] * 4
    probs = np.full((8, 4), 0.25)
    selected = np.array([0, 1, 2, 3, 3, 2, 1, 0])[:, None]
    stats = block_statistics(probs, selected, tasks)
    assert stats["entropy_bits"] == pytest.approx({"rain": 2.0, "haze": 2.0, "all": 2.0})
    assert stats["max_entropy_bits"] == 2.0
    assert stats["selection_frequency"] == {"rain": [0.25] * 4, "haze": [0.25] * 4}
    assert stats["selection_entropy_bits"] == pytest.approx({"rain": 2.0, "haze": 2.0})
    assert stats["task_entropy_bits"] == pytest.approx(1.0)
    assert stats["mutual_information"] == pytest.approx(0.0, abs=1e-12)
    assert stats["mutual_information_soft"] == pytest.approx(0.0, abs=1e-12)
    assert stats["images"] == {"rain": 4, "haze": 4} and stats["top_k"] == 1 and stats["num_prompts"] == 4


def test_one_prompt_per_task_gives_full_mutual_information():
    tasks = ["noise", "rain", "haze"] * 2
    own = {"noise": 2, "rain": 0, "haze": 4}
    selected = np.array([own[t] for t in tasks])[:, None]
    probs = np.eye(5)[selected[:, 0]]
    stats = block_statistics(probs, selected, tasks)
    assert stats["entropy_bits"]["all"] == 0.0
    assert stats["selection_frequency"]["haze"] == [0, 0, 0, 0, 1.0]
    assert stats["selection_entropy_bits"] == {"noise": 0.0, "rain": 0.0, "haze": 0.0}
    assert stats["task_entropy_bits"] == pytest.approx(math.log2(3))
    assert stats["mutual_information_bits"] == pytest.approx(math.log2(3))
    assert stats["mutual_information"] == pytest.approx(1.0)
    assert stats["mutual_information_soft"] == pytest.approx(1.0)


def test_mixed_selection_has_the_hand_computed_mutual_information():
    # rain always selects 0; haze selects 0 and 1 half the time each. p(T, S) = [[1/2, 0], [1/4, 1/4]]:
    # H(S) = H(3/4, 1/4) = 0.811278, H(S | T) = 1/2·0 + 1/2·1 = 0.5, so I = 0.311278 bits, H(T) = 1 bit.
    tasks = ["rain", "rain", "haze", "haze"]
    selected = np.array([[0], [0], [0], [1]])
    probs = np.array([[0.5, 0.25, 0.25]] * 4)
    stats = block_statistics(probs, selected, tasks)
    expected = -(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25)) - 0.5
    assert stats["mutual_information_bits"] == pytest.approx(expected)
    assert stats["mutual_information"] == pytest.approx(expected)
    assert stats["selection_entropy_bits"] == pytest.approx({"rain": 0.0, "haze": 1.0})
    assert stats["entropy_bits"]["rain"] == pytest.approx(1.5)
    assert stats["mutual_information_soft"] == pytest.approx(0.0, abs=1e-12)  # identical probabilities


def test_top_k_selections_share_an_image_and_joint_tables_give_mutual_information():
    np.testing.assert_allclose(selection_matrix(np.array([[0, 2], [1, 1]]), 3), [[0.5, 0, 0.5], [0, 1.0, 0]])
    assert mutual_information_bits(np.array([[3, 0], [0, 1]])) == pytest.approx(
        -(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25)))
    assert normalised_mutual_information(np.array([[2.0, 2.0]])) is None  # one task: nothing to explain


def _tiny(name, **extra):
    torch.manual_seed(0)
    return build_model(name, dim=8, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1, prompt_sizes=[8, 4, 4],
                       heads=[1, 1, 2, 2], **extra).eval()


def _images(tasks, size=16):
    gen = torch.Generator().manual_seed(0)
    return {"set": [{"lq": torch.rand(3, size, size, generator=gen), "task": t, "key": f"img{i}"}
                    for i, t in enumerate(tasks)]}


def test_collect_routing_records_every_block_and_the_calibration_follows_the_router():
    model = _tiny("cplir")
    for block in model.prompt_blocks().values():  # a router that always prefers component 3
        nn.init.zeros_(block.linear_layer.weight)
        block.linear_layer.bias.data = torch.tensor([0.0, 0.0, 0.0, 2.0, 0.0])
    tasks = ["rain", "haze", "rain"]
    table = collect_routing(model, _images(tasks, size=12))  # 12 is padded to the model's multiple of 8
    assert table.tasks == tasks and table.keys == ["img0", "img1", "img2"]
    assert table.blocks == ["prompt3", "prompt2", "prompt1"]
    assert table.probs["prompt1"].shape == (3, 5) and table.selected["prompt1"].shape == (3, 1)
    assert (table.selected["prompt2"] == 3).all()
    expected_p = math.exp(2) / (math.exp(2) + 4)
    np.testing.assert_allclose(table.probs["prompt3"][:, 3], expected_p, rtol=1e-5)
    calibration = routing_calibration(model, _images(tasks))
    assert calibration == {b: {"rain": [0, 0, 0, 1.0, 0], "haze": [0, 0, 0, 1.0, 0]} for b in table.blocks}
    stats = table.statistics()["prompt1"]
    assert stats["mutual_information"] == pytest.approx(0.0, abs=1e-12)  # same prompt for both tasks
    others = (1 - expected_p) / 4
    assert stats["entropy_bits"]["all"] == pytest.approx(entropy_bits(np.array([expected_p] + [others] * 4)))


def test_dense_blocks_select_their_arg_max_and_plain_backbones_have_no_routing():
    table = collect_routing(_tiny("promptir"), _images(["rain", "haze"]))
    np.testing.assert_array_equal(table.selected["prompt3"][:, 0], table.probs["prompt3"].argmax(1))

    class Plain(PromptedBackbone):
        def decode(self, feats, x, ctx):
            return x

    assert collect_routing(Plain(), _images(["rain"])).blocks == []
    assert routing_calibration(Plain(), _images(["rain"])) is None
