"""Optimizers over the one flat parameter buffer, learning-rate schedules, constraints and penalties.

>>> import numpy as np
>>> from descend.nn.parameter import Parameter
>>> w = Parameter(np.zeros(3), dtype=np.float64)
>>> optimizer = SGD([w], lr=0.1, momentum=0.9, schedule=StepDecay(step_size=100))
>>> for _ in range(200):                       # minimise 0.5 · ‖w − 1‖²
...     optimizer.zero_grad()
...     w.grad[...] = w.data - 1.0
...     optimizer.step()
>>> w.data.round(4).tolist()
[1.0, 1.0, 1.0]
"""

from descend.optim.adaptive import Adadelta, Adam, RMSprop
from descend.optim.constraints import MaxNorm
from descend.optim.optimizer import Optimizer, ParamGroup, build_optimizer
from descend.optim.regularizers import l1_penalty, l2_penalty
from descend.optim.schedules import (
    CosineDecay, ExponentialDecay, InverseTimeDecay, MomentumRamp, Schedule, StepDecay, build_schedule,
)
from descend.optim.sgd import SGD

__all__ = [
    "SGD", "Adadelta", "Adam", "CosineDecay", "ExponentialDecay", "InverseTimeDecay", "MaxNorm", "MomentumRamp",
    "Optimizer", "ParamGroup", "RMSprop", "Schedule", "StepDecay", "build_optimizer", "build_schedule", "l1_penalty",
    "l2_penalty",
]
