"""Exponential moving average of a network's weights (Polyak averaging; Ho et al. 2020 sec. 4).

One EMA for every application: torch's AveragedModel with the EMA update
w_ema <- decay * w_ema + (1 - decay) * w, a frozen copy saved with the checkpoint (keys
`module.*` and `n_averaged`) and used for validation and sampling.
"""

from __future__ import annotations

from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn


def ema_copy(model: nn.Module, decay: float, *, average_initial: bool = False) -> AveragedModel:
    """A frozen EMA of `model`; call `.update_parameters(model)` after each optimiser step.

    The first update copies the model's weights, unless `average_initial` counts the initial
    weights as the first average (then the first update already blends with `decay`).
    """
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay))
    ema.requires_grad_(False)
    if average_initial:
        ema.update_parameters(model)
    return ema
