"""Where tensors live and how randomness is pinned down."""
import os
import random

import numpy as np
import torch


def get_device() -> torch.device:
    """CUDA when a GPU is present, else the CPU. Nothing in the course requires a GPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python, NumPy and PyTorch (CPU and CUDA); return a CPU generator seeded the same way.

    Passing the returned generator to ``torch.randn(..., generator=g)`` keeps a demo's numbers
    independent of whatever else consumed the global random state before it.
    """
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    return torch.Generator().manual_seed(seed)
