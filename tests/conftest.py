import pytest
import torch
from helpers import tiny_splits

torch.set_num_threads(1)


@pytest.fixture
def tiny_data():
    """A small in-memory 3-class problem shaped like images (1, 4, 4), with 30% noise."""
    return tiny_splits()
