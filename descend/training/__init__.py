"""Training: `fit` and its engines' shared loop.

- `fit` (fit.py): the arguments checked once, then an engine by name;
- `loop.py`: History, TrainingState, callbacks, the progress bar, the epoch's tally and record (Run);
- `step.py`: the step function, clipping, the finite check, model snapshots, `train_on_batch`;
- `evaluate.py`: evaluate and predict;
- `local.py`: the local engine, the reference (HOGWILD! and Spark are in descend.hogwild and descend.spark).
"""

from descend.training.evaluate import evaluate, predict
from descend.training.fit import ENGINES, fit
from descend.training.loop import Callback, EarlyStopping, History, TrainingState
from descend.training.step import ModelSnapshot, clip_grad_norm, clip_grad_value, make_step, train_on_batch

__all__ = [
    "ENGINES", "Callback", "EarlyStopping", "History", "ModelSnapshot", "TrainingState", "clip_grad_norm",
    "clip_grad_value", "evaluate", "fit", "make_step", "predict", "train_on_batch",
]
