"""descend: deep learning from first principles, fast enough for real work.

Where to start (`import descend as dc`):

- tensors and the tape: `dc.tensor`, `dc.no_grad`, the ops (`dc.exp`, `dc.matmul`, `dc.relu`, ...),
  `Tensor.backward`; `dc.explain` prints the forward trace and the reverse sweep;
- your own op: subclass `dc.Function`, check it with `dc.gradcheck`;
- models: `dc.nn` (layers, losses, ready models such as `nn.MLP` and `nn.SimpleCNN`), `dc.optim`
  (SGD, Adam, schedules), `dc.data` (MNIST, digits, text, batches);
- training: `dc.fit` (engine "local", "hogwild" or "spark"), `dc.evaluate`, `dc.predict`, callbacks,
  `dc.lr_find`, `dc.manual_seed` for hand-written loops;
- files: `dc.save` / `dc.load` (the whole model), `dc.save_weights` / `dc.load_weights` (weights only);
  PyTorch weights: `dc.interop.from_torch` / `to_torch`, or `model.load_state_dict(state, layout="torch")`;
  speed: `dc.kernels`.

`__all__` lists every public name; the `descend` command and the crash course (`examples/`) use them.

>>> import descend as dc
>>> x1, x2 = dc.tensor(2.0, requires_grad=True), dc.tensor(5.0, requires_grad=True)
>>> f = dc.log(x1) + x1 * x2 - dc.sin(x2)
>>> f.backward()
>>> round(float(x1.grad), 3), round(float(x2.grad), 3)
(5.5, 1.716)
"""

from descend import errors
from descend.version import __version__
from descend.seeding import manual_seed
from descend.tensor import Tensor, no_grad, tensor  # first: the ops import it
from descend.ops import (
    abs, argmax, clip, concat, conv1d, conv2d, conv_transpose1d, conv_transpose2d, cos, cross_entropy, elu, exp,
    flatten, interpolate, leaky_relu, log, log_softmax, matmul, max, maximum, mean, min, nll_loss, relu, reshape,
    sigmoid, sin, softmax, softplus, split, sqrt, stack, sum, tanh, transpose, where,
)

from descend.ops.base import Function  # noqa: E402  (subclass it for an op of your own: see the README)
from descend import data, kernels, nn, optim, training  # noqa: E402
from descend.explain import Explanation, explain  # noqa: E402
from descend.gradcheck import GradcheckError, gradcheck  # noqa: E402
from descend.io import load, load_optimizer_state, load_weights, save, save_weights  # noqa: E402
from descend.training import (  # noqa: E402
    Callback, EarlyStopping, History, ModelSnapshot, TrainingState, clip_grad_norm, clip_grad_value, evaluate, fit,
    make_step, predict, train_on_batch,
)
from descend import anomaly  # noqa: E402  (after training: it scores with predict)
from descend.lr_find import LearningRateRange, lr_find  # noqa: E402
from descend import onnx  # noqa: E402  (imports the onnx package only when export runs)
from descend import interop  # noqa: E402  (PyTorch weights in and out; never imports torch)

__all__ = [
    # tensors, the tape and the ops
    "Tensor", "tensor", "no_grad", "Function", "gradcheck", "GradcheckError", "explain", "Explanation",
    "abs", "argmax", "clip", "concat", "conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d", "interpolate",
    "cos", "cross_entropy", "elu", "exp", "flatten", "leaky_relu", "log",
    "log_softmax", "matmul", "max", "maximum", "mean", "min", "nll_loss", "relu", "reshape", "sigmoid", "sin",
    "softmax", "softplus", "split", "sqrt", "stack", "sum", "tanh", "transpose", "where",
    # models, optimizers, data, speed
    "nn", "optim", "data", "kernels", "manual_seed",
    # training
    "fit", "evaluate", "predict", "make_step", "train_on_batch", "clip_grad_norm", "clip_grad_value", "Callback",
    "EarlyStopping", "History", "ModelSnapshot", "TrainingState", "training", "lr_find", "LearningRateRange",
    # around training
    "save", "load", "save_weights", "load_weights", "load_optimizer_state", "interop", "anomaly", "onnx", "errors", "__version__",
]
