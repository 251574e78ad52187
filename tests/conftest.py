import pytest
import torch

torch.set_num_threads(2)

TINY = dict(dim=16, num_blocks=(1, 1, 1, 1), num_refinement_blocks=1, prompt_sizes=(16, 8, 4))


@pytest.fixture
def tiny_kwargs():
    """A PromptIR configuration small enough for CPU tests."""
    return dict(TINY)
