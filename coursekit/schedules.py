"""The learning-rate schedule every model of the course trains with."""
import math


def warmup_cosine(step: int, peak: float, warmup: int, total: int, final: float) -> float:
    """The learning rate of step ``step`` (from 0): a linear warm-up to ``peak`` over ``warmup`` steps, then a
    cosine decay that reaches ``final`` at step ``total`` and stays there."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return final + 0.5 * (peak - final) * (1 + math.cos(math.pi * progress))
