"""Generators as pure functions of (seed, keys...): stable across processes, key-dependent, and equal to the
idioms they replaced (so no sample, crop or shuffle changed)."""

import numpy as np
import pytest
import torch

from cplir.seeding import numpy_generator, seed_material, torch_generator


def test_string_keys_are_stable_and_key_dependent():
    draw = lambda *args: int(numpy_generator(*args).integers(1 << 30))
    assert draw(0, "a/b.png", "noise") == draw(0, "a/b.png", "noise") == 119021447  # same in every process
    values = {draw(0, "a/b.png", "noise"), draw(0, "a/b.png", "blur"), draw(0, "a/c.png", "noise"),
              draw(1, "a/b.png", "noise"), draw(0, "noise", "a/b.png"), draw(0, "a/b.pngnoise")}
    assert len(values) == 6


def test_integer_keys_are_numpy_seed_sequences():
    # The training mix drew from default_rng([seed, epoch, index]); the helper keeps those streams.
    assert np.array_equal(numpy_generator(3, 1, 7).random(5), np.random.default_rng([3, 1, 7]).random(5))
    assert seed_material(3, 1, 7) == [3, 1, 7]
    assert np.array_equal(numpy_generator(5).random(3), np.random.default_rng(5).random(3))


def test_torch_generator_without_keys_is_the_manual_seed_and_keys_change_it():
    assert torch.equal(torch.rand(4, generator=torch_generator(11)),
                       torch.rand(4, generator=torch.Generator().manual_seed(11)))
    draws = [torch.rand(4, generator=torch_generator(11, *keys)) for keys in ((), (0,), (1,), ("a",), ("b",))]
    assert all(not torch.equal(a, b) for i, a in enumerate(draws) for b in draws[i + 1:])
    assert torch.equal(torch.rand(4, generator=torch_generator(11, "a", 2)),
                       torch.rand(4, generator=torch_generator(11, "a", 2)))


@pytest.mark.parametrize("seed, keys, match", [(0, (1.5,), "keys"), ("0", ("a",), "seed"), (-1, (), "seed"),
                                               (0, (-2,), "non-negative"), (True, (), "seed")])
def test_bad_seeds_and_keys_are_rejected(seed, keys, match):
    with pytest.raises(ValueError, match=match):
        numpy_generator(seed, *keys)
