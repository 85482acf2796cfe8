"""ONNX export: a descend model as an ONNX graph that onnxruntime, or any ONNX runtime, can run.

>>> import descend as dc, numpy as np, tempfile, os
>>> model = dc.nn.MLP([4, 8, 3], rng=0)
>>> path = dc.onnx.export(model, os.path.join(tempfile.mkdtemp(), "mlp.onnx"), np.zeros((2, 4)))
>>> path.name
'mlp.onnx'

export walks the model as plain data, as Module does: each supported layer
becomes a few ONNX nodes and its weights become float32 initializers named
after descend's parameters. The model is exported as it computes in eval
mode (dropout is the identity, batch norm uses its running statistics, a
VAE decodes its mean). The example input runs through every layer on the
way, so a shape that does not fit is caught, and layers that need a size
(AdaptiveAvgPool2d, Maxout) learn it there. The batch axis is dynamic, and
so is the time axis of a recurrent model.

Layouts: a dense weight (in, out) is what MatMul wants; convolutions are
NCHW with weights (out, in / groups, kh, kw), as in ONNX. Recurrent weights
(in, gates·H) are transposed to ONNX's (gates·H, in) and their gate blocks
reordered: LSTM i, f, g, o -> ONNX i, o, f, c; GRU r, z, n -> ONNX z, r, h.
descend's GRU applies the reset gate after the hidden product,
n = tanh(x W_in + b_in + r·(h W_hn + b_hn)), which is ONNX's GRU with
linear_before_reset=1.

The `onnx` package is imported only when export runs: NumPy stays the
engine's only hard dependency (pip install 'descend[onnx]').
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from descend.errors import DescendError, DescendTypeError, ShapeError
from descend.files import writable_target, write_atomically
from descend.nn.autoencoders import (
    Autoencoder, ConvAutoencoder, DenoisingAutoencoder, SparseAutoencoder, TiedLinear, VariationalAutoencoder,
)
from descend.nn.conv import (
    AdaptiveAvgPool2d, AvgPool2d, BatchNorm1d, BatchNorm2d, Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d, MaxPool2d,
    Upsample,
)
from descend.nn.layers import (
    ELU, Dropout, Flatten, LeakyReLU, Linear, Maxout, ReLU, Sequential, Sigmoid, Softmax, Tanh,
)
from descend.nn.models import MLP, CharRNN, LeNet5, LinearRegression, LogisticRegression, SimpleCNN
from descend.nn.module import Module
from descend.nn.parameter import Parameter
from descend.nn.recurrent import GRU, LSTM, RNN, Embedding
from descend.ops.conv import padding_for
from descend.tensor import Tensor, array_of, no_grad
from descend.version import __version__

#: the ONNX operator set the graphs are written for (opset 17: ONNX 1.12 and onnxruntime 1.12 onwards)
OPSET = 17

#: ONNX's gate order as indices into descend's (PyTorch's) gate blocks
_GATE_ORDER = {LSTM: (0, 3, 1, 2), GRU: (1, 0, 2), RNN: (0,)}


def export(model: Module, path: str | os.PathLike, example_input: Any) -> Path:
    """Write `model`, as it computes in eval mode, to `path` as an ONNX model (opset 17); returns the path.

    example_input: an array (or Tensor) the model accepts, e.g. (N, in_features) for an MLP, (N, C, H, W)
    for a CNN, (T, N, input_size) for an LSTM ((N, T, ·) with batch_first), int token ids (N, T) for a
    CharRNN. Its batch size does not matter: the graph's batch axis is dynamic (and the time axis of a
    recurrent model); the other axes are fixed to the example's.

    The graph's input is "input" (float32; int64 token ids for a model that starts with an Embedding).
    Its outputs are "output", and for RNN and GRU also "h_n", for LSTM "h_n" and "c_n", shaped as the
    model's own outputs. A recurrent graph starts from zero states (a stateful CharRNN's carried state is
    not exported). The file is written whole or not at all: a bad example_input (a ShapeError or
    DescendTypeError naming it) or an unsupported layer (a DescendTypeError listing the supported ones)
    leaves `path` as it was.
    """
    onnx = _import_onnx()
    if not isinstance(model, Module):
        raise DescendTypeError(f"model must be a descend Module; got {type(model).__name__}")
    writable_target("path", path)  # a path that would be refused is refused before the graph is built
    example = _example_array(example_input, takes_ids=_takes_ids(model))
    training = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        proto = _build(onnx, model, example)
    finally:
        for module, flag in training:
            module.training = flag
    onnx.checker.check_model(proto, full_check=True)
    payload = proto.SerializeToString()
    return write_atomically(path, lambda stream: stream.write(payload))


def supported_layers() -> list[str]:
    """The names of the layers and models export knows, sorted."""
    return sorted(cls.__name__ for cls in (*_CONVERTERS, *_RECURRENT))


def _import_onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise ImportError("ONNX export needs the onnx package: pip install 'descend[onnx]'") from None
    return onnx


# -- the example input ----------------------------------------------------------------------------------------

def _takes_ids(model: Module) -> bool:
    """True when the model's first layer is an Embedding, so its input is integer token ids."""
    if isinstance(model, (Embedding, CharRNN)):
        return True
    return type(model) is Sequential and len(model) > 0 and _takes_ids(model[0])


def _example_array(example_input: Any, takes_ids: bool) -> np.ndarray:
    """example_input as float32, or int64 ids; an error naming it when it is no array with a batch axis."""
    array = array_of(example_input)
    if array.dtype.kind not in "fiub":
        raise DescendTypeError(f"example_input must be a numeric array; got dtype {array.dtype}")
    if array.ndim == 0 or array.shape[0] == 0:
        raise ShapeError(f"example_input must be an array with a batch axis and at least one sample; "
                         f"got shape {array.shape}")
    if takes_ids:
        if array.dtype.kind not in "iu":
            raise DescendTypeError(f"example_input must be integer token ids for a model that starts with an "
                                   f"Embedding; got dtype {array.dtype}")
        return array.astype(np.int64)
    return array.astype(np.float32)


# -- the graph ------------------------------------------------------------------------------------------------

class _Value(NamedTuple):
    """A value in the graph under construction: its ONNX name and what descend computes for the example."""

    name: str
    example: np.ndarray


class _Graph:
    """Nodes and initializers, with fresh names; each Parameter becomes one initializer, however often used."""

    def __init__(self, onnx: Any, model: Module, example_shape: tuple[int, ...]):
        self.onnx, self.example_shape = onnx, example_shape
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.parameter_names = {id(parameter): name for name, parameter in model.named_parameters()}
        self.stored: dict[int, str] = {}
        self.taken: set[str] = set()

    def fresh(self, hint: str) -> str:
        """A name not used yet, `hint` itself when free."""
        name, count = hint, 1
        while name in self.taken:
            name, count = f"{hint}_{count}", count + 1
        self.taken.add(name)
        return name

    def constant(self, array: np.ndarray, hint: str) -> str:
        """An initializer holding `array` (floats as float32); returns its name."""
        array = np.asarray(array)
        array = array.astype(np.float32) if array.dtype.kind == "f" else array
        name = self.fresh(hint)
        self.initializers.append(self.onnx.numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def parameter(self, parameter: Parameter) -> str:
        """The initializer of a parameter, under its dotted name in the model."""
        if id(parameter) not in self.stored:
            self.stored[id(parameter)] = self.constant(parameter.data, self.name_of(parameter))
        return self.stored[id(parameter)]

    def name_of(self, parameter: Parameter) -> str:
        """The parameter's dotted name in the model ('network.layers.0.weight')."""
        return self.parameter_names[id(parameter)]

    def sibling(self, parameter: Parameter, name: str) -> str:
        """A name beside a parameter's: ('layers.1.weight', 'running_mean') -> 'layers.1.running_mean'."""
        prefix = self.name_of(parameter).rpartition(".")[0]
        return f"{prefix}.{name}" if prefix else name

    def node(self, op: str, inputs: list[str], outputs: int = 1, **attributes: Any) -> list[str]:
        """Add an `op` node on `inputs` ('' for a skipped optional input); returns the names of its outputs."""
        base = f"{op.lower()}_{len(self.nodes)}"
        names = [self.fresh(base if outputs == 1 else f"{base}_{k}") for k in range(outputs)]
        self.nodes.append(self.onnx.helper.make_node(op, inputs, names, name=f"{op}_{len(self.nodes)}", **attributes))
        return names

    def run(self, module: Module, value: _Value) -> Any:
        """What `module` gives for the example value; a bad example gets an error naming example_input."""
        example = value.example if value.example.dtype.kind in "iu" else Tensor(value.example)
        try:
            with no_grad():
                return _data(module(example))
        except DescendError as error:
            raise type(error)(f"example_input of shape {self.example_shape} does not fit the model: {error}") from None

    def apply(self, op: str, value: _Value, module: Module, *inputs: str, **attributes: Any) -> _Value:
        """One node `op` on value (and `inputs`) that computes what `module` computes."""
        return _Value(self.node(op, [value.name, *inputs], **attributes)[0], self.run(module, value))


def _data(value: Any) -> Any:
    if isinstance(value, tuple):
        return tuple(_data(part) for part in value)
    return array_of(value)


def _build(onnx: Any, model: Module, example: np.ndarray) -> Any:
    """The ONNX ModelProto of `model` (already in eval mode) for inputs shaped like `example`."""
    graph = _Graph(onnx, model, example.shape)
    graph.taken.add("input")
    outputs = _outputs(graph, model, _Value("input", example))
    names = ["output", "h_n", "c_n"][: len(outputs)]
    for value, name in zip(outputs, names):
        graph.taken.add(name)
        graph.nodes.append(onnx.helper.make_node("Identity", [value.name], [name], name=f"Identity_{name}"))
    input_axes, output_axes = _dynamic_axes(model)
    element = onnx.TensorProto.INT64 if example.dtype.kind == "i" else onnx.TensorProto.FLOAT
    inputs = [onnx.helper.make_tensor_value_info("input", element, _shape(example.shape, input_axes))]
    results = [onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, _shape(value.example.shape, axes))
               for value, name, axes in zip(outputs, names, output_axes)]
    body = onnx.helper.make_graph(graph.nodes, type(model).__name__, inputs, results, graph.initializers)
    opsets = [onnx.helper.make_opsetid("", OPSET)]
    proto = onnx.helper.make_model(body, opset_imports=opsets, producer_name="descend", producer_version=__version__,
                                   ir_version=onnx.helper.find_min_ir_version_for(opsets))
    proto.doc_string = repr(model)
    return proto


def _shape(shape: tuple[int, ...], dynamic: dict[int, str]) -> list[int | str]:
    """The example's shape with its dynamic axes named ('N', 'T') instead of sized."""
    return [dynamic.get(axis, size) for axis, size in enumerate(shape)]


def _dynamic_axes(model: Module) -> tuple[dict[int, str], list[dict[int, str]]]:
    """Which axes of the input and of each output are the batch (N) and time (T) axes."""
    if isinstance(model, CharRNN):
        return {0: "N", 1: "T"}, [{0: "N", 1: "T"}]
    if type(model) in _RECURRENT:
        sequence = {0: "N", 1: "T"} if model.batch_first else {0: "T", 1: "N"}
        return sequence, [sequence, {1: "N"}, {1: "N"}]
    return {0: "N"}, [{0: "N"}]


def _outputs(graph: _Graph, model: Module, value: _Value) -> list[_Value]:
    """The graph of the whole model: its output, and the final states for a recurrent layer."""
    if type(model) in _RECURRENT:
        return _recurrent(graph, model, value)
    return [_convert(graph, model, value)]


def _convert(graph: _Graph, module: Module, value: _Value) -> _Value:
    """Nodes for one module; an unsupported one gets an error that names it and lists what is supported."""
    converter = _CONVERTERS.get(type(module))
    if converter is None:
        where = "" if type(module) not in _RECURRENT else " inside another module (export it alone, or a CharRNN)"
        raise DescendTypeError(
            f"ONNX export does not support {type(module).__name__}{where} ({module!r:.200}); "
            f"supported: {', '.join(supported_layers())}"
        )
    return converter(graph, module, value)


# -- converters: one per layer, each a few nodes ----------------------------------------------------------------

def _sequential(graph: _Graph, model: Sequential, value: _Value) -> _Value:
    for layer in model.layers:
        value = _convert(graph, layer, value)
    return value


def _linear(graph: _Graph, layer: Linear, value: _Value) -> _Value:
    product = graph.node("MatMul", [value.name, graph.parameter(layer.weight)])[0]
    if layer.bias is not None:
        product = graph.node("Add", [product, graph.parameter(layer.bias)])[0]
    return _Value(product, graph.run(layer, value))


def _tied_linear(graph: _Graph, layer: TiedLinear, value: _Value) -> _Value:
    # the encoder's weight is stored once; its transpose is a node, not a second copy
    weight = graph.node("Transpose", [graph.parameter(layer.source.weight)], perm=[1, 0])[0]
    product = graph.node("MatMul", [value.name, weight])[0]
    return _Value(graph.node("Add", [product, graph.parameter(layer.bias)])[0], graph.run(layer, value))


def _maxout(graph: _Graph, layer: Maxout, value: _Value) -> _Value:
    candidates = _linear(graph, layer.linear, value)
    # 0 keeps an input axis as it is, so the leading (batch) axes stay dynamic
    shape = [0] * (value.example.ndim - 1) + [layer.out_features, layer.pieces]
    pieces = graph.node("Reshape", [candidates.name, graph.constant(np.array(shape, dtype=np.int64), "maxout_shape")])
    return _Value(graph.node("ReduceMax", pieces, axes=[-1], keepdims=0)[0], graph.run(layer, value))


def _activation(op: str, **attributes: Callable[[Module], Any]) -> Callable[[_Graph, Module, _Value], _Value]:
    """A converter for an elementwise layer: one `op` node, attributes read from the layer."""

    def convert(graph: _Graph, layer: Module, value: _Value) -> _Value:
        return graph.apply(op, value, layer, **{name: read(layer) for name, read in attributes.items()})

    return convert


def _identity(graph: _Graph, layer: Module, value: _Value) -> _Value:
    return value  # dropout in eval mode


def _flatten(graph: _Graph, layer: Flatten, value: _Value) -> _Value:
    return graph.apply("Flatten", value, layer, axis=1)


def _listed(setting: Any) -> list[int]:
    """A layer's setting per spatial axis: a pair as it is, a 1-D layer's int as one number."""
    return list(setting) if isinstance(setting, tuple) else [setting]


def _weights(graph: _Graph, layer: Module) -> list[str]:
    return [graph.parameter(layer.weight)] + ([graph.parameter(layer.bias)] if layer.bias is not None else [])


def _conv(graph: _Graph, layer: Conv1d | Conv2d, value: _Value) -> _Value:
    return graph.apply("Conv", value, layer, *_weights(graph, layer), kernel_shape=_listed(layer.kernel_size),
                       strides=_listed(layer.stride), pads=_conv_pads(layer), dilations=_listed(layer.dilation),
                       group=layer.groups)


def _conv_pads(layer: Conv1d | Conv2d) -> list[int]:
    """ONNX's pads, [begin per axis..., end per axis...], for padding given as numbers, "valid" or "same"."""
    if not isinstance(layer.padding, str):
        return _listed(layer.padding) * 2
    kernel, dilation = _listed(layer.kernel_size), _listed(layer.dilation)
    missing = 2 - len(kernel)  # a 1-D layer is asked as a 2-D one of height 1
    after, dropped = padding_for(layer.padding, (1, 1), (*[1] * missing, *kernel), (*[1] * missing, *dilation),
                                 type(layer).__name__)
    # descend pads `after` zeros on both sides and drops the first `dropped` outputs: as `after − dropped` before
    return [a - d for a, d in zip(after[missing:], dropped[missing:])] + list(after[missing:])


def _conv_transpose(graph: _Graph, layer: ConvTranspose1d | ConvTranspose2d, value: _Value) -> _Value:
    padding, extra = _listed(layer.padding), _listed(layer.output_padding)
    # ONNX's ConvTranspose takes the weight as descend holds it, (in, out / groups, k...)
    settings = dict(kernel_shape=_listed(layer.kernel_size), strides=_listed(layer.stride),
                    dilations=_listed(layer.dilation), group=layer.groups)
    if all(o < s for o, s in zip(extra, settings["strides"])):
        return graph.apply("ConvTranspose", value, layer, *_weights(graph, layer), pads=padding + padding,
                           output_padding=extra, **settings)
    # output_padding >= stride (allowed below the dilation) is refused by onnxruntime: crop less at the end instead;
    # positions past the last one any input pixel reaches (output_padding beyond the padding) hold the bias alone
    out = graph.run(layer, value)
    name = graph.node("ConvTranspose", [value.name, graph.parameter(layer.weight)],
                      pads=padding + [max(p - o, 0) for p, o in zip(padding, extra)], **settings)[0]
    beyond = [max(o - p, 0) for p, o in zip(padding, extra)]
    if any(beyond):
        pads = np.array([0] * (2 + len(extra) + 2) + beyond, dtype=np.int64)  # begins of every axis, then ends
        name = graph.node("Pad", [name, graph.constant(pads, "output_padding")])[0]
    if layer.bias is not None:
        shape = graph.constant(np.array([-1] + [1] * len(extra), dtype=np.int64), "bias_shape")
        name = graph.node("Add", [name, graph.node("Reshape", [graph.parameter(layer.bias), shape])[0]])[0]
    return _Value(name, out)


def _max_pool(graph: _Graph, layer: MaxPool2d, value: _Value) -> _Value:
    # ONNX's MaxPool ignores padded positions: the same as descend's −∞ padding
    return graph.apply("MaxPool", value, layer, kernel_shape=list(layer.kernel_size), strides=list(layer.stride),
                       pads=list(layer.padding) * 2)


def _avg_pool(graph: _Graph, layer: AvgPool2d, value: _Value) -> _Value:
    return graph.apply("AveragePool", value, layer, kernel_shape=list(layer.kernel_size), strides=list(layer.stride),
                       pads=list(layer.padding) * 2, count_include_pad=1)  # descend counts padding as zeros


def _adaptive_avg_pool(graph: _Graph, layer: AdaptiveAvgPool2d, value: _Value) -> _Value:
    if layer.output_size == (1, 1):
        return graph.apply("GlobalAveragePool", value, layer)
    out = graph.run(layer, value)  # checks that the example's H, W divide into equal blocks
    block = [value.example.shape[2] // layer.output_size[0], value.example.shape[3] // layer.output_size[1]]
    return _Value(graph.node("AveragePool", [value.name], kernel_shape=block, strides=block)[0], out)


def _batch_norm(graph: _Graph, layer: BatchNorm2d, value: _Value) -> _Value:
    statistics = [graph.constant(layer.running_mean, graph.sibling(layer.weight, "running_mean")),
                  graph.constant(layer.running_var, graph.sibling(layer.weight, "running_var"))]
    return graph.apply("BatchNormalization", value, layer, graph.parameter(layer.weight),
                       graph.parameter(layer.bias), *statistics, epsilon=layer.eps)


def _upsample(graph: _Graph, layer: Upsample, value: _Value) -> _Value:
    out = graph.run(layer, value)  # checks the input's rank against the mode and the sizes
    if layer.size is None:
        scale = np.array([1, 1, *np.broadcast_to(layer.scale_factor, value.example.ndim - 2)], dtype=np.float32)
        inputs = [value.name, "", graph.constant(scale, "upsample_scales")]
    else:  # the batch and channels as they come, the rest as asked
        head = graph.node("Slice", [graph.node("Shape", [value.name])[0],
                                    graph.constant(np.array([0], dtype=np.int64), "upsample_start"),
                                    graph.constant(np.array([2], dtype=np.int64), "upsample_end")])[0]
        tail = graph.constant(np.array(out.shape[2:], dtype=np.int64), "upsample_size")
        inputs = [value.name, "", "", graph.node("Concat", [head, tail], axis=0)[0]]
    if layer.mode == "nearest":
        # asymmetric coordinates and floor: output position i reads input ⌊i·in/out⌋, PyTorch's nearest
        resized = graph.node("Resize", inputs, mode="nearest", coordinate_transformation_mode="asymmetric",
                             nearest_mode="floor")
    else:
        corners = "align_corners" if layer.align_corners else "pytorch_half_pixel"
        resized = graph.node("Resize", inputs, mode="linear", coordinate_transformation_mode=corners)
    return _Value(resized[0], out)


def _embedding(graph: _Graph, layer: Embedding, value: _Value) -> _Value:
    rows = graph.node("Gather", [graph.parameter(layer.weight), value.name], axis=0)  # the table's rows by id
    return _Value(rows[0], graph.run(layer, value))


def _encoder_decoder(graph: _Graph, model: Autoencoder | ConvAutoencoder, value: _Value) -> _Value:
    return _convert(graph, model.decoder, _convert(graph, model.encoder, value))


def _variational(graph: _Graph, model: VariationalAutoencoder, value: _Value) -> _Value:
    mean = _convert(graph, model.mean, _convert(graph, model.encoder, value))
    return _convert(graph, model.decoder, mean)  # eval mode: the code is the mean, no noise


def _char_rnn(graph: _Graph, model: CharRNN, value: _Value) -> _Value:
    # the exported model starts each sequence from zeros, as CharRNN does when not stateful
    output = _recurrent(graph, model.recurrent, _convert(graph, model.embedding, value))[0]
    return _convert(graph, model.head, output)


# -- recurrent layers ---------------------------------------------------------------------------------------------

def _recurrent(graph: _Graph, layer: RNN | LSTM, value: _Value) -> list[_Value]:
    """An RNN, GRU or LSTM: one ONNX node per layer, both directions in it; [output, h_n] (+ c_n for LSTM)."""
    examples = _flat_outputs(graph.run(layer, value))
    x = value.name
    if layer.batch_first:  # onnxruntime's recurrent ops are time-major only (layout 0)
        x = graph.node("Transpose", [x], perm=[1, 0, 2])[0]
    states: list[list[str]] = [[], []]
    for index in range(layer.num_layers):
        outputs = graph.node(type(layer).__name__, [x, *_recurrent_weights(graph, layer, index)],
                             outputs=3 if isinstance(layer, LSTM) else 2, **_recurrent_attributes(layer))
        # Y (T, D, N, H) -> (T, N, D·H): the directions side by side, as descend concatenates them
        y = graph.node("Transpose", [outputs[0]], perm=[0, 2, 1, 3])[0]
        x = graph.node("Reshape", [y, graph.constant(np.array([0, 0, -1], dtype=np.int64), "sequence_shape")])[0]
        for kept, final in zip(states, outputs[1:]):
            kept.append(final)
    if layer.batch_first:
        x = graph.node("Transpose", [x], perm=[1, 0, 2])[0]
    finals = [kept[0] if len(kept) == 1 else graph.node("Concat", kept, axis=0)[0] for kept in states if kept]
    return [_Value(name, example) for name, example in zip([x, *finals], examples)]


def _flat_outputs(value: Any) -> list[np.ndarray]:
    """(output, h_n) or (output, (h_n, c_n)) as a flat list."""
    return [array for part in value for array in (part if isinstance(part, tuple) else (part,))]


def _recurrent_attributes(layer: RNN | LSTM) -> dict[str, Any]:
    attributes: dict[str, Any] = {"hidden_size": layer.hidden_size,
                                  "direction": "bidirectional" if layer.bidirectional else "forward"}
    if type(layer) is GRU:
        attributes["linear_before_reset"] = 1  # r multiplies (h W_hn + b_hn), as in descend's GRU
    if type(layer) is RNN:
        attributes["activations"] = [layer.nonlinearity.capitalize()] * layer.directions
    return attributes


def _recurrent_weights(graph: _Graph, layer: RNN | LSTM, index: int) -> list[str]:
    """W (D, G·H, I), R (D, G·H, H) and B (D, 2·G·H) of one layer, in ONNX's layout and gate order."""
    order = _GATE_ORDER[type(layer)]

    def stacked(kind: str) -> np.ndarray:
        suffixes = [f"_l{index}", f"_l{index}_reverse"][: layer.directions]
        return np.stack([_reordered(getattr(layer, f"{kind}{suffix}").data, order) for suffix in suffixes])

    first = getattr(layer, f"weight_ih_l{index}")
    names = [graph.constant(stacked("weight_ih").transpose(0, 2, 1), graph.sibling(first, f"W_l{index}")),
             graph.constant(stacked("weight_hh").transpose(0, 2, 1), graph.sibling(first, f"R_l{index}"))]
    if layer.bias:
        biases = np.concatenate([stacked("bias_ih"), stacked("bias_hh")], axis=1)
        names.append(graph.constant(biases, graph.sibling(first, f"B_l{index}")))
    return names


def _reordered(weight: np.ndarray, order: tuple[int, ...]) -> np.ndarray:
    """A weight (..., G·H) or bias (G·H,) with its gate blocks along the last axis put in ONNX's order."""
    blocks = np.split(weight, len(order), axis=-1)
    return np.concatenate([blocks[k] for k in order], axis=-1)


#: layers with more than one output (the sequence and the final states): the whole model, or inside a CharRNN
_RECURRENT = (RNN, GRU, LSTM)

_CONVERTERS: dict[type, Callable[[_Graph, Any, _Value], _Value]] = {
    Sequential: _sequential,
    SimpleCNN: _sequential,
    LeNet5: _sequential,
    MLP: lambda graph, model, value: _convert(graph, model.network, value),
    LinearRegression: lambda graph, model, value: _convert(graph, model.linear, value),
    LogisticRegression: lambda graph, model, value: _convert(graph, model.linear, value),
    Autoencoder: _encoder_decoder,
    DenoisingAutoencoder: _encoder_decoder,  # the corruption happens only in training
    SparseAutoencoder: _encoder_decoder,
    ConvAutoencoder: _encoder_decoder,
    VariationalAutoencoder: _variational,
    CharRNN: _char_rnn,
    Linear: _linear,
    TiedLinear: _tied_linear,
    Maxout: _maxout,
    ReLU: _activation("Relu"),
    Tanh: _activation("Tanh"),
    Sigmoid: _activation("Sigmoid"),
    LeakyReLU: _activation("LeakyRelu", alpha=lambda layer: layer.negative_slope),
    ELU: _activation("Elu", alpha=lambda layer: layer.alpha),
    Softmax: _activation("Softmax", axis=lambda layer: layer.axis),
    Dropout: _identity,
    Flatten: _flatten,
    Conv1d: _conv,
    Conv2d: _conv,
    ConvTranspose1d: _conv_transpose,
    ConvTranspose2d: _conv_transpose,
    MaxPool2d: _max_pool,
    AvgPool2d: _avg_pool,
    AdaptiveAvgPool2d: _adaptive_avg_pool,
    BatchNorm1d: _batch_norm,
    BatchNorm2d: _batch_norm,
    Upsample: _upsample,
    Embedding: _embedding,
}
