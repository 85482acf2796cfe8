"""Bad input, tried systematically: one table over every public entry point, driven by one test.

Each row calls one entry point with one kind of bad input (a wrong shape or dtype, NaN or infinity, empty
data, labels of the wrong type or range, a non-positive size or rate, an unknown option name) and names the
descend error class it must raise and the words its message must hold: the argument's name, what came and
what was expected. Every descend error subclasses the matching built-in (ValueError, TypeError), so callers
that catch those still catch it.

The table is BAD_INPUTS, built from one list per entry point. A row whose call takes an argument names the
fixture that provides it (`needs`): "tmp_path" for files, "spark" for the one shared SparkSession.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import pytest

import descend as dc
from descend import anomaly, nn, ops, optim
from descend.data import (
    Dataset, Text, as_dataset, batches, load_digits, load_mnist, load_text, make_adding_problem, make_blobs,
    make_line, make_low_rank_matrix, make_moons, make_sparse_classification, make_transactions,
)
from descend.errors import (
    DataError, DescendError, DescendTypeError, DescendValueError, IndexOutOfRangeError, ModelFileError, ShapeError,
)


class Case(NamedTuple):
    """One bad input: what to call, the exact error class it must raise, and words its message must hold."""

    name: str
    call: Callable[..., Any]
    error: type[DescendError]
    words: tuple[str, ...]
    needs: str | None = None  # a fixture whose value the call takes as its one argument


def case(name: str, call: Callable[..., Any], error: type[DescendError], *words: str, needs: str | None = None) -> Case:
    """A row of the table: case("what_is_wrong", lambda: call(...), ErrorClass, "word", "word", ...)."""
    return Case(name, call, error, words, needs)


def ones(*shape: int, dtype: Any = np.float32) -> dc.Tensor:
    """A tensor of ones; ones() is a 0-d one."""
    return dc.tensor(np.ones(shape, dtype=dtype))


def params(*shapes: tuple[int, ...]) -> list[nn.Parameter]:
    """Parameters of zeros; a 2-D one is a weight (fan_in_axes set), a 1-D one a bias."""
    return [nn.Parameter(np.zeros(shape), fan_in_axes=(0,) if len(shape) > 1 else None) for shape in shapes]


# -- tensors: construction and backward ------------------------------------------------------
TENSORS = [
    case("tensor_of_strings", lambda: dc.tensor(["a", "b"]), DescendTypeError, "tensor data", "<U1", "numeric"),
    case("tensor_of_complex", lambda: dc.tensor(np.ones(2, complex)), DescendTypeError, "tensor data", "complex128",
         "float, int or bool"),
    case("tensor_of_objects", lambda: dc.tensor(np.array([object()])), DescendTypeError, "tensor data", "object",
         "numeric"),
    case("tensor_ragged", lambda: dc.tensor([[1.0], [2.0, 3.0]]), DescendTypeError, "tensor data", "list",
         "array of numbers"),
    case("tensor_unknown_dtype", lambda: dc.tensor([1.0], dtype="banana"), DescendTypeError, "dtype", "'banana'",
         "np.float32"),
    case("tensor_string_dtype", lambda: dc.tensor([1.0], dtype=str), DescendTypeError, "dtype", "<U", "numeric"),
    case("tensor_requires_grad_on_ints", lambda: dc.tensor([1, 2], requires_grad=True), DescendTypeError,
         "requires_grad", "int64", "float32 or float64"),
    case("backward_grad_of_wrong_shape", lambda: (dc.tensor(np.ones((2, 3)), requires_grad=True) * 2).backward(
        np.ones(3)), DescendValueError, "grad", "(3,)", "(2, 3)"),
    case("backward_of_many_values", lambda: (dc.tensor(np.ones(3), requires_grad=True) * 2).backward(),
         DescendValueError, "grad", "(3,)", "one-element"),
    case("item_of_many_values", lambda: ones(2).item(), DescendValueError, "item()", "(2,)", "one element"),
    case("truth_of_many_values", lambda: bool(ones(2)), DescendValueError, "truth value", "(2,)", ".any()"),
]

# -- tensor ops: elementwise -----------------------------------------------------------------
ELEMENTWISE = [
    case("add_shapes_that_do_not_broadcast", lambda: ones(2, 3) + ones(4), ShapeError, "add", "(2, 3)", "(4,)",
         "equal or 1"),
    case("mul_reflected_shapes", lambda: np.ones(4) * ones(2, 3), ShapeError, "mul", "(4,)", "(2, 3)"),
    case("power_shapes", lambda: ops.power(ones(3, 1, 2), ones(3)), ShapeError, "power", "(3, 1, 2)", "(3,)"),
    case("where_condition_shape", lambda: ops.where(np.ones(4, bool), ones(2, 3), ones(2, 3)), ShapeError,
         "where", "(4,)", "(2, 3)"),
    case("maximum_shapes", lambda: ops.maximum(ones(2, 3), ones(2)), ShapeError, "maximum", "(2, 3)", "(2,)"),
    case("mul_by_string", lambda: ones(3) * "abc", DescendTypeError, "tensor data", "<U3", "numeric"),
    case("exp_of_strings", lambda: ops.exp(["a"]), DescendTypeError, "tensor data", "<U1", "numeric"),
    case("ops_leaky_relu_slope_string", lambda: ops.leaky_relu(ones(3), "steep"), DescendTypeError, "negative_slope",
         "'steep'", "real number"),
    case("elu_alpha_nan", lambda: ops.elu(ones(3), float("nan")), DescendValueError, "alpha", "nan", "finite"),
    case("clip_bounds_reversed", lambda: ops.clip(ones(3), 1.0, -1.0), DescendValueError, "min=1.0", "max=-1.0",
         "at most"),
]

# -- tensor ops: matrix products -------------------------------------------------------------
MATMUL = [
    case("matmul_inner_sizes_differ", lambda: ones(3, 4) @ ones(5, 6), ShapeError, "matmul", "(3, 4)", "(5, 6)",
         "(..., k, m)"),
    case("matmul_batch_and_matrix", lambda: ones(2, 3, 4) @ ones(3, 4), ShapeError, "(2, 3, 4)", "(3, 4)", "matmul"),
    case("matmul_of_a_scalar", lambda: ones() @ ones(2, 2), ShapeError, "matmul", "()", "(..., n, k)"),
    case("linear_weight_does_not_fit", lambda: ops.linear(ones(2, 3), ones(5, 2), ones(2)), ShapeError, "weight",
         "(5, 2)", "(2, 3)", "in_features"),
    case("linear_weight_is_a_vector", lambda: ops.linear(ones(2, 3), ones(3)), ShapeError, "weight", "(3,)",
         "(in_features, out_features)"),
    case("linear_bias_does_not_fit", lambda: ops.linear(ones(2, 3), ones(3, 2), ones(5)), ShapeError, "bias",
         "(5,)", "(2,)"),
]

# -- tensor ops: reductions and softmax axes -------------------------------------------------
REDUCTIONS = [
    case("sum_axis_out_of_range", lambda: ones(2, 3).sum(axis=5), IndexOutOfRangeError, "axis", "got 5",
         "[-2, 1]"),
    case("mean_negative_axis_out_of_range", lambda: ones(2, 3).mean(axis=-3), IndexOutOfRangeError, "axis",
         "got -3", "[-2, 1]"),
    case("max_axis_float", lambda: ones(2, 3).max(axis=1.5), DescendTypeError, "axis", "float 1.5", "integer"),
    case("min_axis_string", lambda: ones(2, 3).min(axis="rows"), DescendTypeError, "axis", "'rows'", "integer"),
    case("sum_axis_tuple_out_of_range", lambda: ones(2, 3).sum(axis=(0, 2)), IndexOutOfRangeError, "axis[1]",
         "got 2", "[-2, 1]"),
    case("sum_axis_repeated", lambda: ones(2, 3).sum(axis=(0, -2)), DescendValueError, "axis", "(0, -2)", "once"),
    case("sum_axis_of_a_scalar", lambda: ones().sum(axis=0), IndexOutOfRangeError, "axis", "0-d", "got 0"),
    case("max_of_empty", lambda: ones(0, 3).max(), DescendValueError, "max", "(0, 3)", "at least one value"),
    case("min_over_empty_axis", lambda: ones(2, 0).min(axis=1), DescendValueError, "min(axis=1)", "(2, 0)",
         "at least one value"),
    case("softmax_axis_out_of_range", lambda: ones(2, 3).softmax(axis=2), IndexOutOfRangeError, "axis", "got 2",
         "[-2, 1]"),
    case("log_softmax_axis_float", lambda: ops.log_softmax(ones(2, 3), axis=0.5), DescendTypeError, "axis",
         "float 0.5", "integer"),
]

# -- tensor ops: shapes, indexing, joining ---------------------------------------------------
SHAPES = [
    case("reshape_to_wrong_size", lambda: ones(3, 4).reshape(5), ShapeError, "(3, 4)", "(5,)", "12 elements"),
    case("reshape_two_unknown_sizes", lambda: ones(2, 3).reshape(-1, -1), ShapeError, "(-1, -1)",
         "at most one size -1", "6 elements"),
    case("reshape_to_strings", lambda: ones(2, 3).reshape("a", "b"), DescendTypeError, "shape", "('a', 'b')",
         "integers"),
    case("reshape_to_a_float", lambda: ops.reshape(ones(2, 3), 2.5), DescendTypeError, "shape", "float 2.5",
         "sequence of integers"),
    case("transpose_not_a_permutation", lambda: ones(2, 3).transpose(0, 0), ShapeError, "axes", "(0, 0)",
         "permutation"),
    case("transpose_axis_out_of_range", lambda: ones(2, 3).transpose(0, 5), IndexOutOfRangeError, "axes[1]",
         "got 5", "[-2, 1]"),
    case("getitem_row_out_of_range", lambda: ones(2, 3)[5], IndexOutOfRangeError, "index 5", "(2, 3)",
         "out of bounds"),
    case("getitem_too_many_indices", lambda: ones(2, 3)[0, 0, 0], IndexOutOfRangeError, "(0, 0, 0)", "(2, 3)",
         "too many indices"),
    case("getitem_float_index", lambda: ones(2, 3)[1.5], IndexOutOfRangeError, "1.5", "(2, 3)", "only integers"),
    case("getitem_mask_of_wrong_length", lambda: ones(2, 3)[np.array([True, False, True])], IndexOutOfRangeError,
         "(2, 3)", "boolean index", "size of axis is 2"),
    case("concat_other_axes_differ", lambda: ops.concat([ones(2, 3), ones(2, 4)]), ShapeError, "axis 0",
         "(2, 3)", "(2, 4)", "equal other axes"),
    case("concat_ranks_differ", lambda: ops.concat([ones(2, 3), ones(2)], axis=1), ShapeError, "axis 1",
         "(2, 3)", "(2,)"),
    case("concat_axis_out_of_range", lambda: ops.concat([ones(2, 3), ones(2, 3)], axis=3), IndexOutOfRangeError,
         "axis", "got 3", "[-2, 1]"),
    case("concat_nothing", lambda: ops.concat([]), ShapeError, "concat", "at least one tensor", "empty"),
    case("stack_shapes_differ", lambda: ops.stack([ones(2), ones(3)]), ShapeError, "(1, 2)", "(1, 3)",
         "equal other axes"),
    case("stack_axis_out_of_range", lambda: ops.stack([ones(2), ones(2)], axis=5), IndexOutOfRangeError, "axis",
         "got 5", "[-2, 1]"),
    case("split_into_unequal_parts", lambda: ops.split(ones(6), 4), ShapeError, "length 6", "4 equal parts", "axis 0"),
    case("split_axis_out_of_range", lambda: ops.split(ones(2, 4), 2, axis=4), IndexOutOfRangeError, "axis",
         "got 4", "[-2, 1]"),
]

# -- tensor ops: convolution, pooling, normalisation -----------------------------------------
CONV_OPS = [
    case("ops_conv2d_input_of_rank_3", lambda: ops.conv2d(ones(1, 4, 4), ones(2, 1, 3, 3)), ShapeError,
         "(N, C, H, W)", "(1, 4, 4)", "conv2d"),
    case("ops_conv2d_channels_do_not_fit", lambda: ops.conv2d(ones(1, 3, 4, 4), ones(2, 1, 3, 3)), ShapeError,
         "3 channels", "(O, 3, kh, kw)", "(2, 1, 3, 3)"),
    case("ops_conv2d_kernel_larger_than_input", lambda: ops.conv2d(ones(1, 1, 2, 2), ones(1, 1, 3, 3)), ShapeError,
         "kernel spans 3", "only 2", "more padding"),
    case("ops_conv2d_bias_does_not_fit", lambda: ops.conv2d(ones(1, 1, 4, 4), ones(2, 1, 3, 3), ones(3)), ShapeError,
         "bias", "(3,)", "(2,)"),
    case("ops_conv2d_stride_zero", lambda: ops.conv2d(ones(1, 1, 4, 4), ones(2, 1, 3, 3), stride=0),
         DescendValueError, "stride", ">= 1", "got 0"),
    case("ops_conv2d_stride_float", lambda: ops.conv2d(ones(1, 1, 4, 4), ones(2, 1, 3, 3), stride=1.5),
         DescendTypeError, "stride", "float 1.5", "pair of ints"),
    case("ops_conv2d_padding_negative", lambda: ops.conv2d(ones(1, 1, 4, 4), ones(2, 1, 3, 3), padding=-1),
         DescendValueError, "padding", ">= 0", "got -1"),
    case("ops_conv2d_groups_zero", lambda: ops.conv2d(ones(1, 2, 4, 4), ones(2, 1, 3, 3), groups=0),
         DescendValueError, "groups", ">= 1", "got 0"),
    case("ops_conv1d_input_of_rank_2", lambda: ops.conv1d(ones(2, 3), ones(2, 1, 3)), ShapeError, "(N, C, L)",
         "(2, 3)", "conv1d"),
    case("ops_max_pool2d_input_of_rank_2", lambda: ops.max_pool2d(ones(2, 8), 2), ShapeError, "max_pool2d",
         "(N, C, H, W)", "(2, 8)"),
    case("ops_max_pool2d_padding_over_half", lambda: ops.max_pool2d(ones(1, 1, 4, 4), 2, padding=2), ShapeError,
         "padding (2, 2)", "half the kernel size (2, 2)", "max_pool2d"),
    case("ops_avg_pool2d_kernel_zero", lambda: ops.avg_pool2d(ones(1, 1, 4, 4), 0), DescendValueError, "kernel_size",
         ">= 1", "got 0"),
    case("ops_avg_pool2d_kernel_triple", lambda: ops.avg_pool2d(ones(1, 1, 4, 4), (2, 2, 2)), DescendTypeError,
         "kernel_size", "(2, 2, 2)", "pair of ints"),
    case("ops_adaptive_avg_pool2d_does_not_divide", lambda: ops.adaptive_avg_pool2d(ones(1, 1, 4, 4), 3), ShapeError,
         "4x4", "3x3", "equal blocks"),
    case("ops_global_avg_pool2d_input_of_rank_3", lambda: ops.global_avg_pool2d(ones(1, 4, 4)), ShapeError,
         "(N, C, H, W)", "(1, 4, 4)", "global_avg_pool2d"),
    case("ops_upsample2d_scale_zero", lambda: ops.upsample2d(ones(1, 1, 2, 2), 0), DescendValueError, "scale_factor",
         ">= 1", "got 0"),
    case("ops_batch_norm_gamma_does_not_fit", lambda: ops.batch_norm(ones(4, 3), ones(2), ones(2)), ShapeError,
         "gamma", "(2,)", "(4, 3)", "(C,)"),
    case("ops_batch_norm_of_integers", lambda: ops.batch_norm(ones(4, 3, dtype=np.int64), ones(3), ones(3)),
         DescendTypeError, "x", "int64", "floats"),
    case("ops_batch_norm_one_value_per_channel", lambda: ops.batch_norm(ones(1, 3), ones(3), ones(3)), ShapeError,
         "more than one value per channel", "(1, 3)", "got x"),
]

# -- tensor ops: recurrent sequences (x (T, N, I), states (N, H), w_ih (I, G·H), w_hh (H, G·H)) ---


def rnn_with(x=(2, 1, 3), h0=(1, 4), w_ih=(3, 4), w_hh=(4, 4), bias=(4,), nonlinearity="tanh"):
    """ops.rnn on tensors of ones of these shapes: all fit together as given (hidden size 4)."""
    return ops.rnn(ones(*x), ones(*h0), ones(*w_ih), ones(*w_hh), ones(*bias), ones(4), nonlinearity=nonlinearity)


RECURRENT_OPS = [
    case("ops_rnn_input_of_rank_2", lambda: rnn_with(x=(2, 3)), ShapeError, "x", "(T, N, 3)", "(2, 3)"),
    case("ops_rnn_input_width", lambda: rnn_with(x=(2, 1, 5)), ShapeError, "x", "(T, N, 3)", "(2, 1, 5)"),
    case("ops_rnn_h0_shape", lambda: rnn_with(h0=(2, 4)), ShapeError, "h0", "(1, 4)", "(2, 4)"),
    case("ops_rnn_w_hh_not_square", lambda: rnn_with(w_hh=(4, 5)), ShapeError, "w_hh", "(4, 5)", "hidden_size"),
    case("ops_rnn_w_ih_width", lambda: rnn_with(w_ih=(3, 5)), ShapeError, "w_ih", "(3, 5)", "(input_size, 4)"),
    case("ops_rnn_bias_shape", lambda: rnn_with(bias=(3,)), ShapeError, "b_ih", "(3,)", "(4,)"),
    case("ops_rnn_unknown_nonlinearity", lambda: rnn_with(nonlinearity="sigmoid"), DescendValueError, "nonlinearity",
         "'sigmoid'", "'tanh' or 'relu'"),
    case("ops_lstm_c0_shape",
         lambda: ops.lstm(ones(2, 1, 3), ones(1, 2), ones(2, 2), ones(3, 8), ones(2, 8), ones(8), ones(8)),
         ShapeError, "c0", "(1, 2)", "(2, 2)"),
    case("ops_gru_w_ih_for_another_cell",
         lambda: ops.gru(ones(2, 1, 3), ones(1, 2), ones(3, 8), ones(2, 6), ones(6), ones(6)),
         ShapeError, "w_ih", "(3, 8)", "(input_size, 6)"),
]

# -- layers: dense, activations, dropout, containers -----------------------------------------
DENSE_LAYERS = [
    case("linear_zero_in_features", lambda: nn.Linear(0, 3), DescendValueError, "in_features", ">= 1", "got 0"),
    case("linear_negative_out_features", lambda: nn.Linear(3, -3), DescendValueError, "out_features", ">= 1",
         "got -3"),
    case("linear_float_width", lambda: nn.Linear(2.5, 3), DescendTypeError, "in_features", "float 2.5",
         "integer"),
    case("linear_string_width", lambda: nn.Linear("3", 2), DescendTypeError, "in_features", "str '3'", "integer"),
    case("linear_input_width", lambda: nn.Linear(3, 2)(ones(4, 5)), ShapeError, "Linear(3 -> 2)", "(4, 5)",
         "(N, 3)"),
    case("linear_unflattened_images", lambda: nn.Linear(784, 10)(ones(2, 28, 28)), ShapeError, "(2, 28, 28)",
         "(N, 784)", "Flatten"),
    case("linear_scalar_input", lambda: nn.Linear(3, 2)(ones()), ShapeError, "Linear(3 -> 2)", "()", "(N, 3)"),
    case("dropout_p_above_one", lambda: nn.Dropout(1.5), DescendValueError, "p", "1.5", "[0, 1)"),
    case("dropout_p_one", lambda: nn.Dropout(1.0), DescendValueError, "p", "1.0", "[0, 1)"),
    case("dropout_p_negative", lambda: nn.Dropout(-0.1), DescendValueError, "p", "-0.1", "[0, 1)"),
    case("dropout_p_nan", lambda: nn.Dropout(float("nan")), DescendValueError, "p", "nan", "finite"),
    case("dropout_p_string", lambda: nn.Dropout("half"), DescendTypeError, "p", "'half'", "real number"),
    case("leaky_relu_slope_string", lambda: nn.LeakyReLU("x"), DescendTypeError, "negative_slope", "'x'",
         "real number"),
    case("elu_alpha_infinite", lambda: nn.ELU(float("inf")), DescendValueError, "alpha", "inf", "finite"),
    case("softmax_layer_axis", lambda: nn.Softmax(axis=4)(ones(2, 3)), IndexOutOfRangeError, "axis", "got 4",
         "[-2, 1]"),
    case("flatten_a_scalar", lambda: nn.Flatten()(ones()), ShapeError, "Flatten", "()", "(N, ...)"),
    case("maxout_zero_pieces", lambda: nn.Maxout(3, 2, pieces=0), DescendValueError, "pieces", ">= 1", "got 0"),
    case("maxout_zero_out_features", lambda: nn.Maxout(3, 0), DescendValueError, "out_features", "got 0", ">= 1"),
    case("maxout_input_width", lambda: nn.Maxout(3, 2)(ones(2, 5)), ShapeError, "(2, 5)", "(N, 3)", "Linear(3 -> 4)"),
    case("sequential_of_a_number", lambda: nn.Sequential(nn.ReLU(), 3), DescendTypeError, "layers[1]", "int",
         "Module"),
    case("unknown_activation_name", lambda: nn.layers.activation_layer("swish"), DescendValueError, "'swish'",
         "relu", "activation"),
]

# -- layers: convolution, pooling, batch normalisation ---------------------------------------
CONV_LAYERS = [
    case("conv2d_zero_in_channels", lambda: nn.Conv2d(0, 4, 3), DescendValueError, "in_channels", ">= 1", "got 0"),
    case("conv2d_negative_out_channels", lambda: nn.Conv2d(1, -4, 3), DescendValueError, "out_channels",
         "got -4", ">= 1"),
    case("conv2d_kernel_zero", lambda: nn.Conv2d(1, 4, 0), DescendValueError, "kernel_size", ">= 1", "got 0"),
    case("conv2d_kernel_of_three_sizes", lambda: nn.Conv2d(1, 4, (3, 3, 3)), DescendTypeError, "kernel_size",
         "(3, 3, 3)", "pair of ints"),
    case("conv2d_kernel_string", lambda: nn.Conv2d(1, 4, "3x3"), DescendTypeError, "kernel_size", "'3x3'",
         "int or a pair"),
    case("conv2d_stride_zero", lambda: nn.Conv2d(1, 4, 3, stride=0), DescendValueError, "stride", "got 0", ">= 1"),
    case("conv2d_dilation_zero", lambda: nn.Conv2d(1, 4, 3, dilation=0), DescendValueError, "dilation", ">= 1",
         "got 0"),
    case("conv2d_groups_do_not_divide", lambda: nn.Conv2d(3, 8, 3, groups=2), ShapeError, "in_channels 3",
         "groups 2", "divide"),
    case("conv2d_input_channels", lambda: nn.Conv2d(3, 8, 3)(ones(2, 1, 8, 8)), ShapeError, "Conv2d(3 -> 8",
         "(2, 1, 8, 8)", "(N, 3, H, W)"),
    case("conv2d_flat_images", lambda: nn.Conv2d(1, 8, 3)(ones(2, 784)), ShapeError, "(2, 784)", "(N, 1, H, W)",
         "shape='images'"),
    case("conv2d_kernel_larger_than_input", lambda: nn.Conv2d(1, 2, 5)(ones(1, 1, 3, 3)), ShapeError,
         "kernel spans 5", "only 3", "more padding"),
    case("conv1d_kernel_zero", lambda: nn.Conv1d(1, 2, 0), DescendValueError, "kernel_size", ">= 1", "got 0"),
    case("conv1d_kernel_pair", lambda: nn.Conv1d(1, 2, (3, 3)), DescendTypeError, "kernel_size", "tuple",
         "integer"),
    case("conv1d_input_of_rank_4", lambda: nn.Conv1d(2, 4, 3)(ones(2, 2, 3, 3)), ShapeError, "(N, 2, L)",
         "(2, 2, 3, 3)", "Conv1d(2 -> 4"),
    case("conv1d_kernel_larger_than_input", lambda: nn.Conv1d(1, 2, 5)(ones(1, 1, 3)), ShapeError,
         "kernel spans 5", "only 3", "more padding"),
    case("max_pool2d_kernel_zero", lambda: nn.MaxPool2d(0), DescendValueError, "kernel_size", ">= 1", "got 0"),
    case("max_pool2d_stride_negative", lambda: nn.MaxPool2d(2, stride=-1), DescendValueError, "stride", "got -1",
         ">= 1"),
    case("max_pool2d_input_of_rank_2", lambda: nn.MaxPool2d(2)(ones(2, 8)), ShapeError, "MaxPool2d", "(2, 8)",
         "(N, C, H, W)"),
    case("avg_pool2d_kernel_larger_than_input", lambda: nn.AvgPool2d(4)(ones(1, 1, 3, 3)), ShapeError,
         "kernel spans 4", "only 3", "more padding"),
    case("adaptive_pool_output_size_zero", lambda: nn.AdaptiveAvgPool2d(0), DescendValueError, "output_size",
         ">= 1", "got 0"),
    case("adaptive_pool_does_not_divide", lambda: nn.AdaptiveAvgPool2d(3)(ones(1, 1, 4, 4)), ShapeError, "4x4",
         "3x3", "equal blocks"),
    case("batchnorm_zero_features", lambda: nn.BatchNorm1d(0), DescendValueError, "num_features", ">= 1", "got 0"),
    case("batchnorm_eps_zero", lambda: nn.BatchNorm2d(3, eps=0.0), DescendValueError, "eps", "> 0", "got 0.0"),
    case("batchnorm_momentum_above_one", lambda: nn.BatchNorm1d(3, momentum=1.5), DescendValueError, "momentum",
         "[0, 1]", "1.5"),
    case("batchnorm1d_input_width", lambda: nn.BatchNorm1d(4)(ones(2, 5)), ShapeError, "BatchNorm1d", "(2, 5)",
         "(N, 4)"),
    case("batchnorm2d_input_of_rank_2", lambda: nn.BatchNorm2d(3)(ones(2, 3)), ShapeError, "(2, 3)",
         "(N, 3, H, W)", "BatchNorm2d"),
    case("batchnorm_one_row_in_training", lambda: nn.BatchNorm1d(3)(ones(1, 3)), ShapeError,
         "more than one value per channel", "(1, 3)", "got x"),
]

# -- layers: recurrent, cells, embedding -----------------------------------------------------
RECURRENT_LAYERS = [
    case("rnn_zero_input_size", lambda: nn.RNN(0, 4), DescendValueError, "input_size", ">= 1", "got 0"),
    case("rnn_float_hidden_size", lambda: nn.RNN(3, 4.0), DescendTypeError, "hidden_size", "float 4.0", "integer"),
    case("rnn_unknown_nonlinearity", lambda: nn.RNN(3, 4, nonlinearity="sigmoid"), DescendValueError,
         "nonlinearity", "'sigmoid'", "'tanh' or 'relu'"),
    case("rnn_zero_layers", lambda: nn.RNN(3, 4, num_layers=0), DescendValueError, "num_layers", ">= 1", "got 0"),
    case("lstm_dropout_one", lambda: nn.LSTM(3, 4, dropout=1.0), DescendValueError, "dropout", "[0, 1)", "1.0"),
    case("gru_zero_hidden_size", lambda: nn.GRU(3, 0), DescendValueError, "hidden_size", ">= 1", "got 0"),
    case("rnn_input_of_rank_2", lambda: nn.RNN(3, 4)(ones(5, 3)), ShapeError, "(T, N, 3)", "(5, 3)", "RNN(3 -> 4"),
    case("gru_batch_first_input_width", lambda: nn.GRU(4, 3, batch_first=True)(ones(2, 5, 3)), ShapeError,
         "(N, T, 4)", "(2, 5, 3)", "GRU(4 -> 3"),
    case("rnn_h0_shape", lambda: nn.RNN(4, 3)(ones(5, 2, 4), np.zeros((2, 3))), ShapeError, "h0", "(1, 2, 3)",
         "(2, 3)"),
    case("lstm_state_not_a_pair", lambda: nn.LSTM(4, 3)(ones(5, 2, 4), np.zeros((1, 2, 3))), DescendTypeError,
         "state", "(h0, c0)", "ndarray"),
    case("lstm_c0_shape", lambda: nn.LSTM(4, 3)(ones(5, 2, 4), (np.zeros((1, 2, 3)), np.zeros((2, 3)))),
         ShapeError, "c0", "(1, 2, 3)", "(2, 3)"),
    case("rnn_cell_unknown_nonlinearity", lambda: nn.RNNCell(3, 4, nonlinearity="gelu"), DescendValueError,
         "nonlinearity", "'gelu'", "'tanh' or 'relu'"),
    case("rnn_cell_zero_hidden_size", lambda: nn.RNNCell(3, 0), DescendValueError, "hidden_size", "got 0", ">= 1"),
    case("lstm_cell_input_width", lambda: nn.LSTMCell(4, 3)(ones(2, 5)), ShapeError, "x", "(N, 4)", "(2, 5)"),
    case("lstm_cell_state_not_a_pair", lambda: nn.LSTMCell(4, 3)(ones(2, 4), ones(2, 3)), DescendTypeError,
         "state", "(h, c)", "Tensor"),
    case("gru_cell_h_shape", lambda: nn.GRUCell(4, 3)(ones(2, 4), np.zeros((2, 4))), ShapeError, "h", "(2, 3)",
         "(2, 4)"),
    case("embedding_zero_rows", lambda: nn.Embedding(0, 3), DescendValueError, "num_embeddings", ">= 1", "got 0"),
    case("embedding_id_too_large", lambda: nn.Embedding(10, 3)(np.array([3, 10])), DescendValueError, "token ids",
         "[0, 10)", "to 10"),
    case("embedding_negative_id", lambda: nn.Embedding(10, 3)(np.array([-1, 2])), DescendValueError, "token ids",
         "[0, 10)", "-1"),
    case("embedding_float_ids", lambda: nn.Embedding(10, 3)(np.array([0.0, 1.0])), DescendTypeError,
         "integer token ids", "float64", "Embedding(10, 3)"),
    case("embedding_string_ids", lambda: nn.Embedding(10, 3)(np.array(["a"])), DescendTypeError,
         "integer token ids", "<U1", "Embedding(10, 3)"),
]

# -- layers: the ready models ----------------------------------------------------------------
MODELS = [
    case("mlp_one_size", lambda: nn.MLP([10]), DescendValueError, "sizes", "[10]", "[in_features, out_features]"),
    case("mlp_negative_width", lambda: nn.MLP([3, -1, 2]), DescendValueError, "sizes[1]", ">= 1", "got -1"),
    case("mlp_float_width", lambda: nn.MLP([3, 2.5]), DescendTypeError, "sizes[1]", "float 2.5", "integer"),
    case("mlp_unknown_activation", lambda: nn.MLP([4, 2], activation="swish"), DescendValueError, "'swish'",
         "relu", "activation"),
    case("mlp_dropout_one", lambda: nn.MLP([4, 3, 2], dropout=1.0), DescendValueError, "dropout", "[0, 1)", "1.0"),
    case("mlp_input_dropout_negative", lambda: nn.MLP([4, 2], input_dropout=-0.5), DescendValueError,
         "input_dropout", "-0.5", "[0, 1)"),
    case("mlp_input_width", lambda: nn.MLP([4, 8, 2])(ones(3, 5)), ShapeError, "Linear(4 -> 8)", "(3, 5)",
         "(N, 4)"),
    case("logistic_regression_zero_classes", lambda: nn.LogisticRegression(4, 0), DescendValueError, "n_classes",
         ">= 1", "got 0"),
    case("logistic_regression_input_width", lambda: nn.LogisticRegression(4, 3)(ones(2, 3)), ShapeError,
         "(2, 3)", "(N, 4)", "Linear(4 -> 3)"),
    case("linear_regression_zero_outputs", lambda: nn.LinearRegression(3, 0), DescendValueError, "out_features",
         "got 0", ">= 1"),
    case("simple_cnn_image_too_small", lambda: nn.SimpleCNN(image_size=3), DescendValueError, "image_size",
         ">= 4", "got 3"),
    case("simple_cnn_zero_classes", lambda: nn.SimpleCNN(n_classes=0), DescendValueError, "n_classes", "got 0", ">= 1"),
    case("simple_cnn_dropout_one", lambda: nn.SimpleCNN(dropout=1.0), DescendValueError, "dropout", "[0, 1)", "1.0"),
    case("simple_cnn_flat_images", lambda: nn.SimpleCNN(channels=(4,), hidden=8)(ones(2, 784)), ShapeError,
         "(2, 784)", "(N, 1, H, W)", "shape='images'"),
    case("lenet5_unknown_activation", lambda: nn.LeNet5(activation="softsign"), DescendValueError, "'softsign'",
         "tanh", "activation"),
    case("lenet5_zero_classes", lambda: nn.LeNet5(n_classes=0), DescendValueError, "n_classes", ">= 1", "got 0"),
    case("lenet5_wrong_image_size", lambda: nn.LeNet5(rng=0)(ones(1, 1, 32, 32)), ShapeError, "(1, 576)",
         "(N, 400)", "Linear(400 -> 120)"),
    case("char_rnn_zero_vocabulary", lambda: nn.CharRNN(0), DescendValueError, "vocab_size", ">= 1", "got 0"),
    case("char_rnn_unknown_cell", lambda: nn.CharRNN(10, cell="transformer"), DescendValueError, "cell",
         "'transformer'", "lstm"),
    case("char_rnn_zero_embed", lambda: nn.CharRNN(10, embed=0), DescendValueError, "embed", ">= 1", "got 0"),
    case("char_rnn_zero_layers", lambda: nn.CharRNN(10, layers=0), DescendValueError, "layers", ">= 1", "got 0"),
    case("char_rnn_ids_of_rank_1", lambda: nn.CharRNN(10, embed=4, hidden=4)(np.zeros(5, dtype=int)), ShapeError,
         "token ids", "(N, T)", "(5,)"),
    case("char_rnn_id_out_of_range", lambda: nn.CharRNN(10, embed=4, hidden=4)(np.array([[1, 12]])),
         DescendValueError, "token ids", "[0, 10)", "12"),
    case("char_rnn_generate_temperature_zero", lambda: nn.CharRNN(3, embed=2, hidden=2).generate(
        Text("abc"), temperature=0), DescendValueError, "temperature", "> 0", "got 0"),
    case("char_rnn_generate_negative_length", lambda: nn.CharRNN(3, embed=2, hidden=2).generate(
        Text("abc"), length=-1), DescendValueError, "length", ">= 0", "got -1"),
    case("autoencoder_one_size", lambda: nn.Autoencoder([4]), DescendValueError, "sizes", "[4]",
         "[in_features, code_size]"),
    case("autoencoder_zero_code", lambda: nn.Autoencoder([4, 0]), DescendValueError, "sizes", ">= 1", "got 0"),
    case("autoencoder_unknown_output", lambda: nn.Autoencoder([4, 2], output="softmax"), DescendValueError,
         "output", "'softmax'", "sigmoid"),
    case("autoencoder_input_width", lambda: nn.Autoencoder([4, 2])(ones(3, 5)), ShapeError, "Linear(4 -> 2)",
         "(3, 5)", "(N, 4)"),
    case("denoising_autoencoder_negative_noise", lambda: nn.DenoisingAutoencoder([4, 2], noise=-0.1),
         DescendValueError, "noise", ">= 0", "-0.1"),
    case("denoising_autoencoder_dropout_one", lambda: nn.DenoisingAutoencoder([4, 2], dropout=1.0),
         DescendValueError, "dropout", "[0, 1)", "1.0"),
    case("sparse_autoencoder_negative_sparsity", lambda: nn.SparseAutoencoder([4, 2], sparsity=-1.0),
         DescendValueError, "sparsity", ">= 0", "-1.0"),
    case("variational_autoencoder_without_hidden_layer", lambda: nn.VariationalAutoencoder([4, 2]),
         DescendValueError, "sizes", "[4, 2]", "[in, hidden..., code]"),
    case("variational_autoencoder_nan_kl_weight", lambda: nn.VariationalAutoencoder([4, 3, 2],
                                                                                    kl_weight=float("nan")),
         DescendValueError, "kl_weight", "nan", "finite"),
    case("conv_autoencoder_zero_channels", lambda: nn.ConvAutoencoder(channels=(8, 0)), DescendValueError,
         "channels", ">= 1", "got 0"),
    case("conv_autoencoder_no_channels", lambda: nn.ConvAutoencoder(channels=()), DescendValueError, "channels",
         "at least one width", "[]"),
    case("conv_autoencoder_image_not_divisible", lambda: nn.ConvAutoencoder(channels=(2, 2), rng=0)(
        ones(1, 1, 6, 6)), ShapeError, "(1, 1, 6, 6)", "(N, 1, H, W)", "divisible by 4"),
    case("upsample_scale_zero", lambda: nn.Upsample(0), DescendValueError, "scale_factor", ">= 1", "got 0"),
    case("tied_linear_input_width", lambda: nn.TiedLinear(nn.Linear(4, 2))(ones(3, 4)), ShapeError, "(3, 4)",
         "(N, 2)", "TiedLinear(2 -> 4"),
]

# -- losses ----------------------------------------------------------------------------------
LOSSES = [
    case("mse_shapes_differ", lambda: nn.MSELoss()(ones(4, 1), np.zeros(4)), ShapeError, "prediction", "(4, 1)",
         "target", "(4,)"),
    case("mse_target_of_strings", lambda: nn.MSELoss()(ones(2), np.array(["a", "b"])), DescendTypeError,
         "tensor data", "<U1", "numeric"),
    case("cross_entropy_labels_shape", lambda: nn.CrossEntropyLoss()(ones(4, 3), np.array([0, 1])), ShapeError,
         "labels", "(2,)", "(4, 3)", "(4,)"),
    case("cross_entropy_label_too_large", lambda: nn.CrossEntropyLoss()(ones(4, 3), np.array([0, 1, 2, 3])),
         DescendValueError, "labels", "[0, 3)", "to 3"),
    case("cross_entropy_negative_label", lambda: nn.CrossEntropyLoss()(ones(2, 3), np.array([-1, 0])),
         DescendValueError, "labels", "[0, 3)", "from -1"),
    case("cross_entropy_fractional_labels", lambda: nn.CrossEntropyLoss()(ones(2, 3), np.array([0.5, 1.0])),
         DescendValueError, "labels", "[0.5]", "whole class indices"),
    case("cross_entropy_nan_label", lambda: nn.CrossEntropyLoss()(ones(2, 3), np.array([np.nan, 1.0])),
         DescendValueError, "labels", "nan", "whole class indices"),
    case("cross_entropy_string_labels", lambda: nn.CrossEntropyLoss()(ones(2, 3), np.array(["cat", "dog"])),
         DescendTypeError, "labels", "<U3", "integer class indices"),
    case("cross_entropy_logits_of_rank_1", lambda: nn.CrossEntropyLoss()(ones(3), np.array([0])), ShapeError,
         "logits", "(3,)", "(N, C)"),
    case("bce_shapes_differ", lambda: nn.BCEWithLogitsLoss()(ones(4, 1), np.zeros(4)), ShapeError, "targets",
         "(4,)", "(4, 1)"),
    case("bce_targets_above_one", lambda: nn.BCEWithLogitsLoss()(ones(2, 1), np.array([[0.0], [2.0]])),
         DescendValueError, "targets", "[0, 1]", "to 2.0"),
    case("bce_nan_targets", lambda: nn.BCEWithLogitsLoss()(ones(2), np.array([np.nan, 1.0])), DescendValueError,
         "targets", "[0, 1]", "nan"),
    case("bce_targets_of_strings", lambda: nn.BCEWithLogitsLoss()(ones(2), np.array(["0", "1"])),
         DescendTypeError, "tensor data", "<U1", "numeric"),
]

# -- optimizers, schedules, penalties --------------------------------------------------------
OPTIMIZERS = [
    case("sgd_lr_zero", lambda: optim.SGD(params((2, 2)), lr=0), DescendValueError, "lr", "> 0", "got 0"),
    case("sgd_lr_negative", lambda: optim.SGD(params((2, 2)), lr=-0.1), DescendValueError, "lr", "> 0", "-0.1"),
    case("sgd_lr_nan", lambda: optim.SGD(params((2, 2)), lr=float("nan")), DescendValueError, "lr", "finite",
         "nan"),
    case("sgd_lr_infinite", lambda: optim.SGD(params((2, 2)), lr=float("inf")), DescendValueError, "lr", "finite",
         "inf"),
    case("sgd_lr_string", lambda: optim.SGD(params((2, 2)), lr="0.1"), DescendTypeError, "lr", "str '0.1'",
         "real number"),
    case("sgd_momentum_negative", lambda: optim.SGD(params((2, 2)), lr=0.1, momentum=-0.5), DescendValueError,
         "momentum", "[0, 1)", "-0.5"),
    case("sgd_momentum_one", lambda: optim.SGD(params((2, 2)), lr=0.1, momentum=1.0), DescendValueError,
         "momentum", "[0, 1)", "1.0"),
    case("sgd_nesterov_without_momentum", lambda: optim.SGD(params((2, 2)), lr=0.1, nesterov=True),
         DescendValueError, "nesterov=True", "momentum > 0", "momentum=0.0"),
    case("sgd_nesterov_string", lambda: optim.SGD(params((2, 2)), lr=0.1, momentum=0.9, nesterov="yes"),
         DescendTypeError, "nesterov", "'yes'", "True or False"),
    case("sgd_weight_decay_negative", lambda: optim.SGD(params((2, 2)), lr=0.1, weight_decay=-1e-4),
         DescendValueError, "weight_decay", ">= 0", "-0.0001"),
    case("sgd_l1_negative", lambda: optim.SGD(params((2, 2)), lr=0.1, l1=-1.0), DescendValueError, "l1", ">= 0",
         "-1.0"),
    case("sgd_max_norm_zero", lambda: optim.SGD(params((2, 2)), lr=0.1, max_norm=0.0), DescendValueError,
         "max_norm", "> 0", "0.0"),
    case("sgd_no_params", lambda: optim.SGD([], lr=0.1), DescendValueError, "params", "empty", "nothing to update"),
    case("sgd_params_of_a_module", lambda: optim.SGD(nn.Linear(2, 2), lr=0.1), DescendTypeError, "params",
         "Linear", "model.parameters()"),
    case("sgd_params_of_arrays", lambda: optim.SGD([np.ones(3)], lr=0.1), DescendTypeError, "params[0]",
         "ndarray", "Parameter"),
    case("sgd_schedule_by_name", lambda: optim.SGD(params((2, 2)), lr=0.1, schedule="cosine"), DescendTypeError,
         "schedule", "str 'cosine'", "CosineDecay"),
    case("sgd_schedule_momentum_ramp", lambda: optim.SGD(params((2, 2)), lr=0.1, schedule=optim.MomentumRamp()),
         DescendTypeError, "schedule", "MomentumRamp", "SGD(momentum=...)"),
    case("adam_one_beta", lambda: optim.Adam(params((2, 2)), betas=(0.9,)), DescendTypeError, "betas", "(0.9,)",
         "two numbers"),
    case("adam_beta2_one", lambda: optim.Adam(params((2, 2)), betas=(0.9, 1.0)), DescendValueError, "betas[1]",
         "[0, 1)", "1.0"),
    case("adam_eps_zero", lambda: optim.Adam(params((2, 2)), eps=0.0), DescendValueError, "eps", "> 0", "0.0"),
    case("adam_lr_nan", lambda: optim.Adam(params((2, 2)), lr=float("nan")), DescendValueError, "lr", "nan", "finite"),
    case("rmsprop_alpha_one", lambda: optim.RMSprop(params((2, 2)), alpha=1.0), DescendValueError, "alpha",
         "[0, 1)", "1.0"),
    case("rmsprop_momentum_negative", lambda: optim.RMSprop(params((2, 2)), momentum=-0.1), DescendValueError,
         "momentum", "[0, 1)", "-0.1"),
    case("adadelta_rho_negative", lambda: optim.Adadelta(params((2, 2)), rho=-0.9), DescendValueError, "rho",
         "[0, 1)", "-0.9"),
    case("adadelta_eps_infinite", lambda: optim.Adadelta(params((2, 2)), eps=float("inf")), DescendValueError,
         "eps", "finite", "inf"),
    case("optimizer_state_not_a_dict", lambda: optim.SGD(params((2, 2)), lr=0.1).load_state_dict([1, 2]),
         DescendTypeError, "state", "list", "'arrays' and 'scalars'"),
    case("step_decay_zero_steps", lambda: optim.StepDecay(step_size=0), DescendValueError, "step_size", ">= 1",
         "got 0"),
    case("step_decay_gamma_zero", lambda: optim.StepDecay(10, gamma=0.0), DescendValueError, "gamma", "(0, 1]",
         "0.0"),
    case("exponential_decay_gamma_above_one", lambda: optim.ExponentialDecay(1.5), DescendValueError, "gamma",
         "(0, 1]", "1.5"),
    case("inverse_time_decay_zero", lambda: optim.InverseTimeDecay(0.0), DescendValueError, "decay", "> 0", "0.0"),
    case("cosine_decay_zero_steps", lambda: optim.CosineDecay(0), DescendValueError, "total_steps", ">= 1", "got 0"),
    case("cosine_decay_negative_min_lr", lambda: optim.CosineDecay(10, min_lr=-0.1), DescendValueError, "min_lr",
         ">= 0", "-0.1"),
    case("momentum_ramp_start_one", lambda: optim.MomentumRamp(start=1.0), DescendValueError, "start", "[0, 1)", "1.0"),
    case("momentum_ramp_zero_steps", lambda: optim.MomentumRamp(ramp_steps=0), DescendValueError, "ramp_steps",
         ">= 1", "got 0"),
    case("build_optimizer_unknown_class", lambda: optim.build_optimizer({"class": "Lion"}, params((2, 2))),
         DescendValueError, "'Lion'", "SGD", "known 'class'"),
    case("build_schedule_unknown_class", lambda: optim.build_schedule({"class": "Warmup", "config": {}}),
         DescendValueError, "unknown schedule 'Warmup'", "StepDecay"),
    case("build_schedule_not_a_dict", lambda: optim.build_schedule("cosine"), DescendTypeError, "'cosine'",
         "'class' and 'config'", "schedule description"),
    case("l1_penalty_negative_strength", lambda: optim.l1_penalty(params((2, 2)), -1.0), DescendValueError,
         "strength", ">= 0", "-1.0"),
    case("l2_penalty_on_biases_only", lambda: optim.l2_penalty(params((2,)), 0.1), DescendValueError,
         "none of the 1 parameters", "fan_in_axes", "include_all=True"),
    case("max_norm_on_biases_only", lambda: optim.MaxNorm(params((2,)), 1.0), DescendValueError, "max_norm=1.0",
         "fan_in_axes", "would change nothing"),
]

# -- data: Dataset, as_dataset, batches ------------------------------------------------------


def ten_rows() -> Dataset:
    """Ten rows of two features and labels 0..2."""
    return Dataset(np.arange(20.0).reshape(10, 2), np.arange(10) % 3, name="ten")


DATASETS = [
    case("dataset_empty_x", lambda: Dataset(np.zeros((0, 3))), DataError, "x is empty", "(0, 3)",
         "at least one row"),
    case("dataset_lengths_differ", lambda: Dataset(np.zeros((4, 2)), np.zeros(3)), ShapeError, "4 rows",
         "3 rows", "len(x) == len(y)"),
    case("dataset_x_of_strings", lambda: Dataset(np.array(["a", "b"])), DescendTypeError, "x", "<U1", "numeric"),
    case("dataset_ragged_x", lambda: Dataset([[1.0, 2.0], [3.0]]), DescendTypeError, "x", "list",
         "numeric array"),
    case("dataset_scalar_x", lambda: Dataset(np.float32(1.0)), ShapeError, "x", "scalar", "at least 1 dimension"),
    case("dataset_labels_of_strings", lambda: Dataset(np.zeros((2, 2)), np.array(["cat", "dog"])),
         DescendTypeError, "y", "<U3", "numeric"),
    case("dataset_complex_targets", lambda: Dataset(np.zeros(3), np.full(3, 1 + 2j)), DescendTypeError, "y",
         "complex", "numeric"),
    case("dataset_negative_labels", lambda: Dataset(np.zeros(3), np.array([0, -1, 2])), DescendValueError, "y",
         "-1", ">= 0"),
    case("dataset_row_out_of_range", lambda: ten_rows()[10], IndexOutOfRangeError, "row 10", "10 rows",
         "[-10, 9]"),
    case("dataset_row_float", lambda: ten_rows()[1.5], DescendTypeError, "1.5", "float", "an int, a slice"),
    case("dataset_tuple_index", lambda: ten_rows()[0, 1], DescendTypeError, "tuple", "(0, 1)", "ds.x"),
    case("dataset_empty_slice", lambda: ten_rows()[5:5], DataError, "x is empty", "(0, 2)", "at least one row"),
    case("dataset_split_fraction_one", lambda: ten_rows().split(1.0), DescendValueError, "fraction", "1.0",
         "(0, 1)"),
    case("dataset_split_fraction_nan", lambda: ten_rows().split(float("nan")), DescendValueError, "fraction",
         "nan", "finite"),
    case("dataset_split_leaves_a_part_empty", lambda: ten_rows().split(0.01), DataError, "fraction=0.01",
         "10 rows", "empty"),
    case("dataset_subset_too_many", lambda: ten_rows().subset(11), DescendValueError, "n=11", "the 10 it has"),
    case("dataset_subset_float", lambda: ten_rows().subset(2.0), DescendTypeError, "n", "float 2.0", "integer"),
    case("dataset_n_classes_of_regression", lambda: Dataset(np.zeros(2), np.zeros(2)).n_classes,
         DescendValueError, "n_classes", "float64", "integer class labels"),
    case("as_dataset_list", lambda: as_dataset([1.0, 2.0], "train"), DescendTypeError, "train", "list",
         "np.asarray"),
    case("as_dataset_three_items", lambda: as_dataset((1, 2, 3), "validation"), DescendTypeError, "validation",
         "tuple of 3 items", "(x, y)"),
    case("as_dataset_path", lambda: as_dataset("digits.csv", "data"), DescendTypeError, "data", "str", "Dataset"),
    case("batches_size_zero", lambda: batches(10, 0), DescendValueError, "batch_size", ">= 1", "got 0"),
    case("batches_negative_rows", lambda: batches(-1, 2), DescendValueError, "n_rows", ">= 0", "got -1"),
    case("batches_size_float", lambda: batches(10, 2.5), DescendTypeError, "batch_size", "float 2.5", "integer"),
]

# -- data: loaders -----------------------------------------------------------------------------


def damaged_mnist_cache(folder) -> tuple[Dataset, ...]:
    """load_mnist from a folder whose cache file is not an .npz archive."""
    (folder / "mnist.npz").write_bytes(b"not a zip file")
    return load_mnist(cache_dir=folder)


def text_file(folder, contents: bytes) -> Text:
    """load_text from a file holding `contents`."""
    path = folder / "corpus.txt"
    path.write_bytes(contents)
    return load_text(path)


LOADERS = [
    case("load_digits_test_fraction_zero", lambda: load_digits(test_fraction=0), DescendValueError,
         "test_fraction", "(0, 1)", "got 0"),
    case("load_digits_test_fraction_one", lambda: load_digits(test_fraction=1.0), DescendValueError,
         "test_fraction", "(0, 1)", "1.0"),
    case("load_mnist_unknown_shape", lambda: load_mnist(shape="cube"), DescendValueError, "shape", "'cube'",
         "'images'"),
    case("load_mnist_validation_split_string", lambda: load_mnist(validation_split="yes"), DescendTypeError,
         "validation_split", "'yes'", "True or False"),
    case("load_mnist_cache_dir_number", lambda: load_mnist(cache_dir=3), DescendTypeError, "cache_dir", "int",
         "os.PathLike"),
    case("load_mnist_damaged_cache", damaged_mnist_cache, DataError, "mnist.npz", "damaged", needs="tmp_path"),
    case("load_text_source_number", lambda: load_text(3), DescendTypeError, "source", "int", "shakespeare"),
    case("load_text_validation_fraction_one", lambda: load_text(validation_fraction=1.0), DescendValueError,
         "validation_fraction", "[0, 1)", "1.0"),
    case("load_text_missing_file", lambda folder: load_text(folder / "missing.txt"), DataError, "missing.txt",
         "source", needs="tmp_path"),
    case("load_text_folder", lambda folder: load_text(folder), DataError, "is a folder", "source",
         needs="tmp_path"),
    case("load_text_empty_file", lambda folder: text_file(folder, b""), DataError, "corpus.txt", "no text",
         needs="tmp_path"),
    case("load_text_not_utf8", lambda folder: text_file(folder, b"caf\xe9"), DataError, "corpus.txt", "UTF-8",
         needs="tmp_path"),
    case("text_empty", lambda: Text(""), DataError, "text is empty", "at least one character"),
    case("text_of_bytes", lambda: Text(b"abc"), DescendTypeError, "text", "bytes", "str"),
    case("text_encode_unknown_character", lambda: Text("abc").encode("abz"), DescendValueError, "encode", "'z'",
         "vocabulary"),
    case("text_decode_id_out_of_range", lambda: Text("abc").decode([0, 7]), DescendValueError, "ids", "[0, 3)",
         "7"),
    case("text_decode_float_ids", lambda: Text("abc").decode([0.0, 1.0]), DescendTypeError, "ids", "float64",
         "integers"),
    case("text_sequences_length_zero", lambda: Text("abcdef").sequences(0), DescendValueError, "length", ">= 1",
         "got 0"),
    case("text_sequences_unknown_split", lambda: Text("abcdef").sequences(2, split="test"), DescendValueError,
         "split", "'test'", "'validation'"),
    case("text_sequences_longer_than_text", lambda: Text("abcdef").sequences(10), DataError, "length=10",
         "needs 11"),
]

# -- data: synthetic makers ------------------------------------------------------------------
SYNTHETIC = [
    case("make_line_zero_rows", lambda: make_line(n=0), DescendValueError, "n", ">= 1", "got 0"),
    case("make_line_nan_slope", lambda: make_line(slope=float("nan")), DescendValueError, "slope", "finite", "nan"),
    case("make_line_noise_string", lambda: make_line(noise="big"), DescendTypeError, "noise", "str 'big'",
         "real number"),
    case("make_moons_infinite_noise", lambda: make_moons(noise=float("inf")), DescendValueError, "noise",
         "finite", "inf"),
    case("make_moons_float_rows", lambda: make_moons(n=10.5), DescendTypeError, "n", "float 10.5", "integer"),
    case("make_blobs_zero_centers", lambda: make_blobs(centers=0), DescendValueError, "centers", ">= 1", "got 0"),
    case("make_blobs_centers_in_3d", lambda: make_blobs(centers=[[1.0, 2.0, 3.0]]), ShapeError, "centers",
         "(1, 3)", "(k, 2)"),
    case("make_blobs_nan_center", lambda: make_blobs(centers=[[0.0, np.nan]]), DescendValueError, "centers",
         "NaN", "finite"),
    case("make_blobs_centers_string", lambda: make_blobs(centers="three"), DescendTypeError, "centers", "'three'",
         "integer"),
    case("make_blobs_negative_spread", lambda: make_blobs(spread=-1.0), DescendValueError, "spread", ">= 0",
         "-1.0"),
    case("make_adding_problem_length_one", lambda: make_adding_problem(length=1), DescendValueError, "length",
         ">= 2", "got 1"),
    case("make_transactions_contamination_above_half", lambda: make_transactions(contamination=0.6),
         DescendValueError, "contamination", "[0, 0.5]", "0.6"),
    case("make_transactions_zero_rows", lambda: make_transactions(n=0), DescendValueError, "n", ">= 1", "got 0"),
    case("make_sparse_classification_too_many_per_row", lambda: make_sparse_classification(
        n_rows=4, n_features=3, nnz_per_row=5), DescendValueError, "nnz_per_row", "n_features = 3", "got 5"),
    case("make_sparse_classification_label_noise_half", lambda: make_sparse_classification(
        n_rows=4, n_features=3, nnz_per_row=2, label_noise=0.5), DescendValueError, "label_noise", "[0, 0.5)",
         "got 0.5"),
    case("make_low_rank_matrix_zero_rank", lambda: make_low_rank_matrix(rank=0), DescendValueError, "rank", ">= 1",
         "got 0"),
    case("make_low_rank_matrix_density_zero", lambda: make_low_rank_matrix(density=0.0), DescendValueError,
         "density", "(0, 1]", "0.0"),
    case("make_low_rank_matrix_test_fraction_one", lambda: make_low_rank_matrix(test_fraction=1.0),
         DescendValueError, "test_fraction", "(0, 1)", "1.0"),
]

# -- the scikit-learn front and descend.anomaly ----------------------------------------------
# scikit-learn's own checks of X and y come out as descend errors with scikit-learn's words. Predicting
# before fit raises descend.sklearn.NotFittedError, both a descend error and scikit-learn's NotFittedError.
X4 = np.random.default_rng(0).normal(size=(12, 4))
Y4 = np.arange(12) % 3


QUICK = {"hidden_layer_sizes": (4,), "max_iter": 2, "random_state": 0}  # settings a row may override


def classifier(**settings: Any) -> Any:
    """An unfitted NeuralNetClassifier, small and quick, with `settings` on top."""
    from descend.sklearn import NeuralNetClassifier

    return NeuralNetClassifier(**{**QUICK, **settings})


def regressor(**settings: Any) -> Any:
    """An unfitted NeuralNetRegressor, small and quick, with `settings` on top."""
    from descend.sklearn import NeuralNetRegressor

    return NeuralNetRegressor(**{**QUICK, **settings})


def outlier_detector(**settings: Any) -> Any:
    """An unfitted AutoencoderOutlierDetector, small and quick, with `settings` on top."""
    from descend.sklearn import AutoencoderOutlierDetector

    return AutoencoderOutlierDetector(**{**QUICK, **settings})


def fitted(make: Callable[..., Any], **settings: Any) -> Any:
    """An estimator fitted for two epochs on X4 (and Y4), so that predict can be called with bad input."""
    estimator = make(**settings)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # two epochs do not converge, on purpose
        return estimator.fit(X4) if make is outlier_detector else estimator.fit(X4, Y4)


def with_nan(x: np.ndarray) -> np.ndarray:
    """x with NaN wherever it is above 1."""
    return np.where(x > 1, np.nan, x)


def not_fitted_error() -> type[DescendError]:
    from descend.sklearn import NotFittedError

    return NotFittedError


SCIKIT_LEARN = [
    case("classifier_predict_before_fit", lambda: classifier().predict(X4), not_fitted_error(),
         "NeuralNetClassifier", "not fitted", "'fit'"),
    case("regressor_predict_before_fit", lambda: regressor().predict(X4), not_fitted_error(), "NeuralNetRegressor",
         "not fitted", "'fit'"),
    case("outlier_detector_score_before_fit", lambda: outlier_detector().score_samples(X4), not_fitted_error(),
         "AutoencoderOutlierDetector", "not fitted", "'fit'"),
    case("classifier_zero_hidden_units", lambda: classifier(hidden_layer_sizes=(8, 0)).fit(X4, Y4),
         DescendValueError, "hidden_layer_sizes[1]", ">= 1", "got 0"),
    case("classifier_hidden_layer_sizes_string", lambda: classifier(hidden_layer_sizes="8").fit(X4, Y4),
         DescendTypeError, "hidden_layer_sizes", "str '8'", "sequence of integers"),
    case("classifier_unknown_solver", lambda: classifier(solver="lbfgs").fit(X4, Y4), DescendValueError, "solver",
         "'lbfgs'", "'adam', 'sgd'"),
    case("classifier_unknown_activation", lambda: classifier(activation="swish").fit(X4, Y4), DescendValueError,
         "activation", "'swish'", "'logistic'"),
    case("classifier_learning_rate_nan", lambda: classifier(learning_rate_init=float("nan")).fit(X4, Y4),
         DescendValueError, "learning_rate_init", "nan", "> 0"),
    case("classifier_negative_alpha", lambda: classifier(alpha=-1.0).fit(X4, Y4), DescendValueError, "alpha",
         ">= 0", "-1.0"),
    case("classifier_batch_size_word", lambda: classifier(batch_size="big").fit(X4, Y4), DescendTypeError,
         "batch_size", "'big'", "'auto'"),
    case("classifier_max_iter_zero", lambda: classifier(max_iter=0).fit(X4, Y4), DescendValueError, "max_iter",
         ">= 1", "got 0"),
    case("classifier_validation_fraction_one", lambda: classifier(validation_fraction=1.0).fit(X4, Y4),
         DescendValueError, "validation_fraction", "(0, 1)", "1.0"),
    case("classifier_nan_in_x", lambda: classifier().fit(with_nan(X4), Y4), DescendValueError, "Input X",
         "NaN", "does not accept missing values"),
    case("classifier_infinity_in_x", lambda: classifier().fit(np.where(X4 > 1, np.inf, X4), Y4),
         DescendValueError, "Input X", "infinity"),
    case("classifier_empty_x", lambda: classifier().fit(X4[:0], Y4[:0]), DescendValueError, "0 sample(s)",
         "(0, 4)", "minimum of 1"),
    case("classifier_one_dimensional_x", lambda: classifier().fit(X4[:, 0], Y4), DescendValueError,
         "Expected 2D array", "1D array"),
    case("classifier_lengths_differ", lambda: classifier().fit(X4, Y4[:-1]), DescendValueError,
         "inconsistent numbers of samples", "[12, 11]"),
    case("classifier_continuous_labels", lambda: classifier().fit(X4, X4[:, 0]), DescendValueError,
         "Unknown label type", "continuous", "discrete classes"),
    case("classifier_nan_labels", lambda: classifier().fit(X4, np.where(Y4 > 1, np.nan, Y4)), DescendValueError,
         "Input y", "NaN"),
    case("classifier_partial_fit_without_classes", lambda: classifier().partial_fit(X4, Y4), DescendValueError,
         "classes=", "first call", "got classes=None"),
    case("classifier_feature_count_at_predict", lambda: fitted(classifier).predict(X4[:, :3]),
         DescendValueError, "X has 3 features", "expecting 4 features"),
    case("classifier_nan_at_predict", lambda: fitted(classifier).predict_proba(with_nan(X4)),
         DescendValueError, "Input X", "NaN"),
    case("classifier_unseen_label_in_partial_fit", lambda: fitted(classifier).partial_fit(
        X4, np.full(12, 7)), DescendValueError, "labels [7]", "classes_ [0, 1, 2]"),
    case("regressor_momentum_one", lambda: regressor(solver="sgd", momentum=1.0).fit(X4, Y4), DescendValueError,
         "momentum", "[0, 1)", "1.0"),
    case("regressor_dropout_one", lambda: regressor(dropout=1.0).fit(X4, Y4), DescendValueError, "dropout",
         "[0, 1)", "1.0"),
    case("regressor_string_targets", lambda: regressor().fit(X4, np.array(["a", "b", "c"] * 4)), DescendTypeError,
         "y", "<U1", "numbers"),
    case("regressor_infinite_targets", lambda: regressor().fit(X4, np.where(Y4 > 1, np.inf, Y4)),
         DescendValueError, "Input y", "infinity"),
    case("regressor_target_count_with_warm_start", lambda: fitted(regressor, warm_start=True).fit(
        X4, np.stack([Y4, Y4], axis=1)), DescendValueError, "y has 2 targets", "fitted with 1"),
    case("outlier_detector_contamination_above_half", lambda: outlier_detector(contamination=0.7).fit(X4),
         DescendValueError, "contamination", "(0, 0.5]", "0.7"),
    case("outlier_detector_zero_code_size", lambda: outlier_detector(code_size=0).fit(X4), DescendValueError,
         "code_size", ">= 1", "got 0"),
    case("outlier_detector_empty_x", lambda: outlier_detector().fit(np.zeros((0, 4))), DescendValueError,
         "0 sample(s)", "(0, 4)", "minimum of 1"),
    case("outlier_detector_feature_count", lambda: fitted(outlier_detector).score_samples(X4[:, :2]),
         DescendValueError, "X has 2 features", "expecting 4 features"),
    case("anomaly_detector_of_a_classifier", lambda: anomaly.AnomalyDetector(nn.MLP([4, 2])).fit(X4), ShapeError,
         "MLP", "(4,)", "(2,)", "input's shape"),
    case("anomaly_detector_contamination_zero", lambda: anomaly.AnomalyDetector(nn.Autoencoder([4, 2]),
                                                                               contamination=0.0),
         DescendValueError, "contamination", "(0, 0.5]", "0.0"),
    case("anomaly_detector_batch_size_zero", lambda: anomaly.AnomalyDetector(nn.Autoencoder([4, 2]), batch_size=0),
         DescendValueError, "batch_size", ">= 1", "got 0"),
    case("anomaly_detector_threshold_quantile_above_one", lambda: anomaly.AnomalyDetector(
        nn.Autoencoder([4, 2]), threshold_quantile=1.5), DescendValueError, "threshold_quantile", "(0, 1]", "1.5"),
    case("anomaly_detector_unfitted", lambda: anomaly.AnomalyDetector(nn.Autoencoder([4, 2])).predict(X4),
         DescendValueError, "not fitted", "fit(normal_data)"),
    case("anomaly_detector_fit_on_nan", lambda: anomaly.AnomalyDetector(nn.Autoencoder([4, 2])).fit(with_nan(X4)),
         DescendValueError, "x", "NaN", "clean or impute"),
    case("anomaly_detector_fit_on_empty", lambda: anomaly.AnomalyDetector(nn.Autoencoder([4, 2])).fit(
        np.zeros((0, 4))), DataError, "x is empty", "(0, 4)"),
    case("anomaly_detector_feature_count", lambda: anomaly.AnomalyDetector(nn.Autoencoder([4, 2])).fit(X4).predict(
        X4[:, :3]), ShapeError, "x", "(3,)", "(4,)"),
    case("anomaly_detector_explain_top_zero", lambda: anomaly.AnomalyDetector(nn.Autoencoder([4, 2])).fit(
        X4).explain(X4, top=0), DescendValueError, "top", ">= 1", "got 0"),
    case("reconstruction_error_of_a_classifier", lambda: anomaly.reconstruction_error(nn.MLP([4, 2]), X4),
         ShapeError, "MLP", "(4,)", "(2,)"),
]

# -- the Spark front: fit_spark, predict_spark, to_dataframe, descend.spark.ml ----------------
# Every row shares one session (the `spark` fixture); most are refused before any Spark job runs.


def spark_frame(spark: Any, rows: list[tuple] | None = None, schema: Any = ("features", "label")) -> Any:
    """A small DataFrame of 3-feature rows and class labels 0..1, what the MLP([3, 2]) of fit_spark_on takes."""
    return spark.createDataFrame(rows if rows is not None else [([0.0, 1.0, 2.0], 0), ([1.0, 0.0, 1.0], 1)],
                                 list(schema) if isinstance(schema, tuple) else schema)


def fit_spark_on(df: Any, **options: Any) -> Any:
    """fit_spark of a fresh MLP([3, 2]) classifier on `df`."""
    from descend.spark import fit_spark

    model = nn.MLP([3, 2], rng=0)
    return fit_spark(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), df, **options)


def spark_front() -> Any:
    """descend.spark, imported only when a Spark row runs: pyspark is optional."""
    return importlib.import_module("descend.spark")


def spark_ml() -> Any:
    """descend.spark.ml, whose estimators need pyspark at import: imported only when a Spark row runs."""
    return importlib.import_module("descend.spark.ml")


SPARK = [
    case("fit_spark_missing_features_column", lambda spark: fit_spark_on(spark_frame(spark), features="pixels"),
         DescendValueError, "features column 'pixels'", "['features', 'label']", needs="spark"),
    case("fit_spark_missing_label_column", lambda spark: fit_spark_on(spark_frame(spark), label="target"),
         DescendValueError, "label column 'target'", "['features', 'label']", needs="spark"),
    case("fit_spark_features_of_strings", lambda spark: fit_spark_on(spark_frame(spark, [("0,1,2", 0)])),
         DescendTypeError, "features column 'features'", "string", "array<float|double>", needs="spark"),
    case("fit_spark_features_single_numbers", lambda spark: fit_spark_on(spark_frame(spark, [(1.0, 0)])),
         DescendTypeError, "features column 'features'", "single numbers", "VectorAssembler", needs="spark"),
    case("fit_spark_labels_of_strings", lambda spark: fit_spark_on(spark_frame(spark, [([0.0, 1.0, 2.0], "cat")])),
         DescendTypeError, "label column 'label'", "string", "a number", needs="spark"),
    case("fit_spark_nan_features", lambda spark: fit_spark_on(spark_frame(spark, [([0.0, float("nan"), 1.0], 0)])),
         DataError, "features column 'features'", "NaN", "clean them", needs="spark"),
    case("fit_spark_features_of_wrong_length", lambda spark: fit_spark_on(spark_frame(spark, [([0.0, 1.0], 0)])),
         DataError, "features column 'features'", "length [2]", "expected 3", needs="spark"),
    case("fit_spark_label_out_of_range", lambda spark: fit_spark_on(spark_frame(spark, [([0.0, 1.0, 2.0], 5)])),
         DataError, "label column 'label'", "[5]", "classes 0..1", needs="spark"),
    case("fit_spark_empty_dataframe", lambda spark: fit_spark_on(spark_frame(
        spark, [], "features array<double>, label int")), DataError, "df has no rows", "at least one row",
         needs="spark"),
    case("fit_spark_unknown_sync", lambda spark: fit_spark_on(spark_frame(spark), sync="gossip"), DescendValueError,
         "sync", "'gossip'", "'average'", needs="spark"),
    case("fit_spark_sync_every_zero", lambda spark: fit_spark_on(spark_frame(spark), sync_every=0),
         DescendValueError, "sync_every", ">= 1", "got 0", needs="spark"),
    case("fit_spark_batch_size_float", lambda spark: fit_spark_on(spark_frame(spark), batch_size=2.5),
         DescendTypeError, "batch_size", "float 2.5", "integer", needs="spark"),
    case("predict_spark_output_column_taken", lambda spark: spark_front().predict_spark(
        nn.MLP([3, 2]), spark_frame(spark), output="label"), DescendValueError, "'label'", "already exists", "column",
         needs="spark"),
    case("predict_spark_batch_size_zero", lambda spark: spark_front().predict_spark(
        nn.MLP([3, 2]), spark_frame(spark), batch_size=0), DescendValueError, "batch_size", ">= 1", "got 0",
         needs="spark"),
    case("to_dataframe_one_name_for_two_columns", lambda spark: spark_front().to_dataframe(
        spark, Dataset(np.zeros((2, 3)), np.array([0, 1])), label="features"), DescendValueError, "features",
         "label", "'features' for both", needs="spark"),
    case("to_dataframe_of_a_list", lambda spark: spark_front().to_dataframe(
        spark, [[0.0, 1.0]]), DescendTypeError, "dataset", "list", "(x, y)", needs="spark"),
    case("spark_ml_classifier_without_layers", lambda spark: spark_ml().NeuralNetClassifier().fit(spark_frame(spark)),
         DescendValueError, "layers", "[n_features, ..., n_outputs]", "NeuralNetClassifier", needs="spark"),
    case("spark_ml_step_size_zero", lambda spark: spark_ml().NeuralNetClassifier(layers=[3, 2], stepSize=0.0).fit(
        spark_frame(spark)), DescendValueError, "stepSize", "> 0", "0.0", needs="spark"),
    case("spark_ml_anomaly_contamination", lambda spark: spark_ml().AutoencoderAnomalyDetector(
        layers=[3, 2], contamination=0.7).fit(spark_frame(spark)), DescendValueError, "contamination", "(0, 0.5)",
         "0.7", needs="spark"),
]

# -- training: fit, evaluate, predict, lr_find, clipping, callbacks, checkpoints ---------------
def fit_small(model: nn.Module | None = None, **overrides: Any) -> dc.History:
    """fit on 20 two-moons rows with one change from the good defaults (`overrides`)."""
    model = model or nn.MLP([2, 4, 2], rng=0)
    arguments = {"model": model, "loss_fn": nn.CrossEntropyLoss(), "optimizer": optim.SGD(model.parameters(), lr=0.1),
                 "train": make_moons(n=20, seed=0), "epochs": 1, "batch_size": 4, "progress": False, **overrides}
    return dc.fit(**arguments)


def xy(x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) as arrays, numeric x in float32 as a model takes it."""
    return np.asarray(x, dtype=np.float32) if np.asarray(x).dtype.kind in "iuf" else np.asarray(x), np.asarray(y)


def regression_fit(**overrides: Any) -> dc.History:
    """fit of a two-feature linear regression with `overrides` (train= among them)."""
    model = nn.LinearRegression(2, rng=0)
    arguments = {"model": model, "loss_fn": nn.MSELoss(), "optimizer": optim.SGD(model.parameters(), lr=0.1),
                 "epochs": 1, "progress": False, **overrides}
    return dc.fit(**arguments)


def checkpointed_run(folder: Any, model: nn.Module | None = None, **overrides: Any) -> dc.History:
    """A run with checkpoints in folder/run, then a second call on the same folder with `model` and `overrides`."""
    fit_small(checkpoint=folder / "run", checkpoint_every=1)
    return fit_small(model, checkpoint=folder / "run", **overrides)


TRAINING = [
    case("fit_epochs_zero", lambda: fit_small(epochs=0), DescendValueError, "epochs", ">= 1", "0"),
    case("fit_epochs_float", lambda: fit_small(epochs=2.5), DescendTypeError, "epochs", "integer", "2.5"),
    case("fit_batch_size_negative", lambda: fit_small(batch_size=-1), DescendValueError, "batch_size", ">= 1", "-1"),
    case("fit_unknown_engine", lambda: fit_small(engine="gpu"), DescendValueError, "engine", "'gpu'", "local"),
    case("fit_unknown_option", lambda: fit_small(epoch=3), DescendTypeError, "fit", "'epoch'", "epochs"),
    case("fit_nan_features", lambda: fit_small(train=xy(np.full((4, 2), np.nan), [0, 1, 0, 1])), DescendValueError,
         "train.x", "NaN", "index (0, 0)"),
    case("fit_inf_targets", lambda: regression_fit(train=xy(np.ones((4, 2)), [[1.0], [np.inf], [0.0], [1.0]])),
         DescendValueError, "train.y", "NaN or infinite", "(1, 0)"),
    case("fit_float_labels", lambda: fit_small(train=xy(np.ones((4, 2)), [0.5, 1, 0, 1])), DescendValueError,
         "train.y", "integer class labels", "float64"),
    case("fit_string_labels", lambda: fit_small(train=xy(np.ones((2, 2)), ["cat", "dog"])), DescendTypeError,
         "train", "y must be numeric", "<U3"),
    case("fit_label_out_of_range", lambda: fit_small(train=xy(np.ones((4, 2)), [0, 1, 5, 1])), DescendValueError,
         "labels", "[0, 2)", "5"),
    case("fit_negative_label", lambda: fit_small(train=xy(np.ones((4, 2)), [0, -1, 0, 1])), DescendValueError,
         "train", "y", ">= 0", "-1"),
    case("fit_empty_data", lambda: fit_small(train=xy(np.zeros((0, 2)), np.zeros(0, int))), DataError, "empty",
         "(0, 2)", "at least one row"),
    case("fit_wrong_width", lambda: fit_small(train=xy(np.ones((4, 3)), [0, 1, 0, 1])), ShapeError, "(4, 3)",
         "(N, 2)"),
    case("fit_rows_and_labels_differ", lambda: fit_small(train=xy(np.ones((4, 2)), [0, 1])), ShapeError, "4", "2",
         "rows"),
    case("fit_no_targets", lambda: fit_small(train=(np.ones((4, 2), np.float32),)), DescendValueError, "train",
         "no targets", "(x, y)"),
    case("fit_optimizer_of_another_model", lambda: fit_small(optimizer=optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1)),
         DescendValueError, "optimizer", "model.parameters()"),
    case("fit_workers_on_the_local_engine", lambda: fit_small(workers=2), DescendValueError, "workers=2", "hogwild"),
    case("fit_hogwild_without_shuffling", lambda: fit_small(engine="hogwild", shuffle=False), DescendValueError,
         "shuffle=False", "'hogwild'"),
    case("fit_clip_grad_norm_zero", lambda: fit_small(clip_grad_norm=0), DescendValueError, "clip_grad_norm", "> 0",
         "0"),
    case("fit_clip_grad_value_nan", lambda: fit_small(clip_grad_value=float("nan")), DescendValueError,
         "clip_grad_value", "finite", "nan"),
    case("fit_clip_grad_value_string", lambda: fit_small(clip_grad_value="1"), DescendTypeError, "clip_grad_value",
         "real number", "str"),
    case("fit_checkpoint_every_zero", lambda: fit_small(checkpoint="unused", checkpoint_every=0), DescendValueError,
         "checkpoint_every", "'epoch'", "0"),
    case("fit_checkpoint_every_unknown", lambda: fit_small(checkpoint="unused", checkpoint_every="hourly"),
         DescendValueError, "checkpoint_every", "'epoch'", "'hourly'"),
    case("fit_checkpoint_not_a_path", lambda: fit_small(checkpoint=3), DescendTypeError, "checkpoint", "folder path",
         "int"),
    case("fit_resume_without_checkpoint", lambda: fit_small(resume=True), DescendValueError, "resume=True",
         "checkpoint="),
    case("fit_checkpoint_folder_is_a_file", lambda tmp: fit_small(checkpoint=(tmp / "taken").write_text("x") and
                                                                  tmp / "taken"),
         DescendValueError, "checkpoint", "is a file", needs="tmp_path"),
    case("fit_checkpoint_folder_of_another_run", lambda tmp: checkpointed_run(tmp), DescendValueError,
         "already holds", "resume=True", "another folder", needs="tmp_path"),
    case("fit_resume_with_another_batch_size", lambda tmp: checkpointed_run(tmp, resume=True, batch_size=2),
         DescendValueError, "batch_size=4", "batch_size=2", needs="tmp_path"),
    case("fit_resume_with_another_seed", lambda tmp: checkpointed_run(tmp, resume=True, seed=7), DescendValueError,
         "seed=0", "seed=7", needs="tmp_path"),
    case("fit_resume_on_other_data", lambda tmp: checkpointed_run(tmp, resume=True, train=make_moons(n=20, seed=1)),
         DescendValueError, "other data", needs="tmp_path"),
    case("fit_resume_another_model", lambda tmp: checkpointed_run(tmp, resume=True, model=nn.MLP([2, 5, 2], rng=0)),
         DescendValueError, "another model", "MLP", needs="tmp_path"),
    case("fit_resume_with_fewer_epochs", lambda tmp: (fit_small(checkpoint=tmp / "run", epochs=3),
                                                      fit_small(checkpoint=tmp / "run", resume=True, epochs=2)),
         DescendValueError, "epochs=2", "epoch 3", needs="tmp_path"),
    case("early_stopping_patience_zero", lambda: dc.EarlyStopping(patience=0), DescendValueError, "patience", ">= 1"),
    case("early_stopping_unknown_metric", lambda: fit_small(callbacks=[dc.EarlyStopping(monitor="val_auc")]),
         DescendValueError, "'val_auc'", "loss", "validation="),
    case("evaluate_no_targets", lambda: dc.evaluate(nn.MLP([2, 3, 2], rng=0), nn.CrossEntropyLoss(),
                                                    (np.ones((3, 2), np.float32),)),
         DescendValueError, "data", "no targets"),
    case("evaluate_batch_size_zero", lambda: dc.evaluate(nn.MLP([2, 3, 2], rng=0), nn.CrossEntropyLoss(),
                                                         make_moons(n=8), batch_size=0),
         DescendValueError, "batch_size", ">= 1", "0"),
    case("evaluate_nan", lambda: dc.evaluate(nn.MLP([2, 3, 2], rng=0), nn.CrossEntropyLoss(),
                                             xy([[np.nan, 1.0]], [0])), DescendValueError, "data.x", "NaN"),
    case("predict_batch_size_zero", lambda: dc.predict(nn.MLP([2, 3, 2], rng=0), np.ones((3, 2)), batch_size=0),
         DescendValueError, "batch_size", ">= 1", "0"),
    case("predict_wrong_width", lambda: dc.predict(nn.MLP([2, 3, 2], rng=0), np.ones((3, 5))), ShapeError, "(3, 5)",
         "(N, 2)"),
    case("predict_strings", lambda: dc.predict(nn.MLP([2, 3, 2], rng=0), np.array([["a", "b"]])), DescendTypeError,
         "x", "<U1"),
    case("predict_unknown_option", lambda: dc.predict(nn.MLP([2, 3, 2], rng=0), np.ones((3, 2)), batchsize=8),
         DescendTypeError, "predict", "'batchsize'", "batch_size"),
    case("lr_find_steps_zero", lambda: dc.lr_find(nn.MLP([2, 3, 2], rng=0), nn.CrossEntropyLoss(),
                                                  optim.SGD(nn.MLP([2, 3, 2], rng=1).parameters(), lr=0.1),
                                                  make_moons(n=20), steps=0),
         DescendValueError, "steps", "0"),
    case("lr_find_unknown_option", lambda: dc.lr_find(nn.MLP([2, 3, 2], rng=0), nn.CrossEntropyLoss(), None,
                                                      make_moons(n=20), min_lr=1e-5),
         DescendTypeError, "lr_find", "'min_lr'", "start_lr"),
    case("clip_grad_norm_negative", lambda: dc.clip_grad_norm(np.ones(3, np.float32), -1.0), DescendValueError,
         "max_norm", "> 0", "-1.0"),
    case("clip_grad_value_zero", lambda: dc.clip_grad_value(np.ones(3, np.float32), 0.0), DescendValueError,
         "max_value", "> 0", "0.0"),
    case("clip_grad_norm_of_a_string", lambda: dc.clip_grad_norm("grads", 1.0), DescendTypeError,
         "clip_grad_norm takes a flat gradient buffer or parameters", "'grads'"),
    case("clip_grad_value_of_integers", lambda: dc.clip_grad_value([1, 2], 1.0), DescendTypeError,
         "clip_grad_value takes", "int 1"),
    # -- issue 17: training settings and data as the model reads them --
    case("fit_seed_negative", lambda: fit_small(seed=-1), DescendValueError, "seed", ">= 0", "-1"),
    case("fit_seed_float", lambda: fit_small(seed=0.5), DescendTypeError, "seed", "integer", "0.5"),
    case("fit_hogwild_seed_string", lambda: fit_small(engine="hogwild", workers=1, seed="7"), DescendTypeError,
         "seed", "integer", "'7'"),
    case("fit_one_callback_not_in_a_list", lambda: fit_small(callbacks=dc.EarlyStopping()), DescendTypeError,
         "callbacks", "EarlyStopping", "wrap it in a list"),
    case("fit_callback_class_not_instance", lambda: fit_small(callbacks=[dc.EarlyStopping]), DescendTypeError,
         "callbacks[0]", "Callback", "EarlyStopping()"),
    case("fit_callback_not_a_callback", lambda: fit_small(callbacks=[print]), DescendTypeError, "callbacks[0]",
         "Callback", "builtin_function_or_method"),
    case("fit_shuffle_string", lambda: fit_small(shuffle="no"), DescendTypeError, "shuffle", "True or False", "'no'"),
    case("fit_resume_number", lambda: fit_small(checkpoint="unused", resume=1), DescendTypeError, "resume",
         "True or False", "int 1"),
    case("fit_progress_unknown", lambda: fit_small(progress="sometimes"), DescendValueError, "progress", "'auto'",
         "'sometimes'"),
    case("fit_features_beyond_float32", lambda: fit_small(train=(np.array([[1.0, 2.0], [1e39, 0.0]]),
                                                                  np.array([0, 1]))),
         DescendValueError, "train.x", "1e+39", "row 1", "float32"),
    case("fit_model_not_a_module", lambda: dc.fit("mlp", nn.CrossEntropyLoss(), None, make_moons(n=20)),
         DescendTypeError, "model", "descend Module", "'mlp'"),
    case("fit_loss_not_callable", lambda: fit_small(loss_fn="cross-entropy"), DescendTypeError, "loss_fn",
         "nn.CrossEntropyLoss()", "'cross-entropy'"),
    case("fit_engine_not_a_name", lambda: fit_small(engine=["local"]), DescendValueError, "engine", "['local']",
         "local, hogwild, spark"),
    case("fit_spark_engine_on_arrays", lambda: fit_small(engine="spark"), DescendTypeError, "Spark DataFrame",
         "train of type", "to_dataframe"),
    case("predict_one_dimensional", lambda: dc.predict(nn.MLP([2, 3, 2], rng=0), np.ones(2)), ShapeError, "x",
         "(2,)", "x[None]"),
]


# -- files: save, load, optimizer state -------------------------------------------------------
# A row that writes names its output tmp_path/"out...": the test checks no such file, and no temporary file, stays.
def saved(tmp: Any, name: str = "good.dsc", optimizer: bool = False) -> Any:
    """A good model file in tmp (with Adam's state when `optimizer`), to damage or misuse."""
    model = nn.MLP([2, 3, 2], rng=0)
    return dc.save(model, tmp / name, optimizer=optim.Adam(model.parameters(), lr=0.1) if optimizer else None)


def damaged(tmp: Any, change: Callable[[bytes], bytes]) -> Any:
    """A good model file whose bytes went through `change`."""
    path = saved(tmp)
    path.write_bytes(change(path.read_bytes()))
    return path


def planted_pickle(tmp: Any) -> Any:
    """A pickle that would create tmp/out-pwned when unpickled."""
    import os
    import pickle

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {tmp / 'out-pwned'}",))

    path = tmp / "pickle.dsc"
    path.write_bytes(pickle.dumps(Payload()))
    return path


class Unsavable(nn.Module):
    """A user's module with an argument a model file cannot describe."""

    def __init__(self, thing: Any):
        self.thing = thing

    def forward(self, x):
        return x


FILES = [
    case("save_not_a_model", lambda tmp: dc.save("model", tmp / "out.dsc"), DescendTypeError, "model", "Module", "str",
         needs="tmp_path"),
    case("save_path_not_a_path", lambda: dc.save(nn.MLP([2, 3, 2], rng=0), 3), DescendTypeError, "path", "str",
         "int"),
    case("save_to_a_folder", lambda tmp: dc.save(nn.MLP([2, 3, 2], rng=0), tmp), DescendValueError, "path",
         "is a folder", "model.dsc", needs="tmp_path"),
    case("save_inside_a_file", lambda tmp: dc.save(nn.MLP([2, 3, 2], rng=0), saved(tmp) / "out.dsc"),
         DescendValueError, "path", "inside a file", needs="tmp_path"),
    case("save_an_optimizer_of_another_model",
         lambda tmp: dc.save(nn.MLP([2, 3, 2], rng=0), tmp / "out.dsc",
                             optimizer=optim.SGD(nn.MLP([2, 3, 2], rng=0).parameters(), lr=0.1)),
         DescendValueError, "optimizer", "model.parameters()", needs="tmp_path"),
    case("save_an_indescribable_argument", lambda tmp: dc.save(Unsavable(object()), tmp / "out.dsc"),
         DescendTypeError, "Unsavable", "thing", "object", "JSON", needs="tmp_path"),
    case("save_unknown_option", lambda tmp: dc.save(nn.MLP([2, 3, 2], rng=0), tmp / "out.dsc", optimiser=None),
         DescendTypeError, "save", "'optimiser'", "optimizer", needs="tmp_path"),
    case("load_path_not_a_path", lambda: dc.load(None), DescendTypeError, "path", "NoneType"),
    case("load_missing_file", lambda tmp: dc.load(tmp / "missing.dsc"), ModelFileError, "no model file",
         "missing.dsc", needs="tmp_path"),
    case("load_a_pickle", lambda tmp: dc.load(planted_pickle(tmp)), ModelFileError, "pickle", "never loads",
         needs="tmp_path"),
    case("load_truncated", lambda tmp: dc.load(damaged(tmp, lambda raw: raw[: len(raw) // 2])), ModelFileError,
         "truncated", needs="tmp_path"),
    case("load_empty", lambda tmp: dc.load(damaged(tmp, lambda raw: b"")), ModelFileError, "truncated", "0 bytes",
         needs="tmp_path"),
    case("load_a_flipped_byte", lambda tmp: dc.load(damaged(tmp, lambda raw: raw[:-5] + bytes([raw[-5] ^ 1]) +
                                                           raw[-4:])),
         ModelFileError, "damaged", "SHA-256", needs="tmp_path"),
    case("load_a_zip", lambda tmp: dc.load(damaged(tmp, lambda raw: b"PK\x03\x04" + bytes(100))), ModelFileError,
         "zip", needs="tmp_path"),
    case("load_text", lambda tmp: dc.load(damaged(tmp, lambda raw: b"not a model at all, just some words")),
         ModelFileError, "not a descend model file", needs="tmp_path"),
    case("load_a_future_version", lambda tmp: dc.load(damaged(tmp, lambda raw: raw.replace(
        b'"format_version":"1"', b'"format_version":"9"'))),
         ModelFileError, "version 9", "reads version 1", needs="tmp_path"),
    case("load_optimizer_state_of_a_file_without_one",
         lambda tmp: dc.load_optimizer_state(saved(tmp), optim.Adam(nn.MLP([2, 3, 2], rng=0).parameters(), lr=0.1)),
         ModelFileError, "no optimizer state", "optimizer=opt", needs="tmp_path"),
    case("load_optimizer_state_into_another_class",
         lambda tmp: dc.load_optimizer_state(saved(tmp, optimizer=True),
                                             optim.SGD(nn.MLP([2, 3, 2], rng=0).parameters(), lr=0.1)),
         DescendValueError, "'Adam'", "SGD", needs="tmp_path"),
    case("load_optimizer_state_into_another_model",
         lambda tmp: dc.load_optimizer_state(saved(tmp, optimizer=True),
                                             optim.Adam(nn.MLP([2, 5, 2], rng=0).parameters(), lr=0.1)),
         ShapeError, "exp_avg", "(17,)", "(27,)", needs="tmp_path"),
]


# -- capsules: the ops, the layers, CapsNet and its margin loss -------------------------------
def tiny_capsnet(**settings: Any) -> nn.CapsNet:
    """A CapsNet small enough to build in a row: 4 channels, 2 primary capsule types of 4, digits of 4."""
    return nn.CapsNet(**{"conv_channels": 4, "primary_caps": 2, "primary_dim": 4, "digit_dim": 4, "rng": 0,
                         **settings})


def capsule_output(n: int = 2) -> Any:
    return tiny_capsnet()(ones(n, 1, 28, 28))


CAPSULES = [
    case("squash_axis_out_of_range", lambda: dc.ops.squash(ones(2, 3), axis=2), IndexOutOfRangeError, "axis",
         "2-d", "got 2"),
    case("capsule_predictions_misfit", lambda: dc.ops.capsule_predictions(ones(2, 5, 4), ones(5, 3, 12), 3),
         ShapeError, "(2, 5, 4)", "(5, 3, 12)", "(I, D_in, J·D_out)"),
    case("capsule_predictions_zero_outputs", lambda: dc.ops.capsule_predictions(ones(2, 5, 4), ones(5, 4, 12), 0),
         DescendValueError, "out_capsules", ">= 1", "0"),
    case("routing_zero_iterations", lambda: dc.ops.dynamic_routing(ones(1, 2, 3, 4), 0), DescendValueError,
         "iterations", ">= 1", "0"),
    case("routing_of_three_axes", lambda: dc.ops.dynamic_routing(ones(2, 3, 4)), ShapeError, "(N, J, I, D)",
         "(2, 3, 4)"),
    case("digit_capsules_zero_routing", lambda: nn.DigitCapsules(4, 2, 3, 2, routing_iters=0), DescendValueError,
         "routing_iters", ">= 1", "0"),
    case("digit_capsules_wrong_input", lambda: nn.DigitCapsules(4, 2, 3, 2, rng=0)(ones(2, 5, 2)), ShapeError,
         "(2, 5, 2)", "(N, 4, 2)"),
    case("primary_capsules_zero_dim", lambda: nn.PrimaryCapsules(4, 2, 0), DescendValueError, "dim", ">= 1", "0"),
    case("capsnet_images_too_small", lambda: tiny_capsnet(image_size=10), DescendValueError, "image_size", ">= 18",
         "10"),
    case("capsnet_one_class", lambda: tiny_capsnet(n_classes=1), DescendValueError, "n_classes", ">= 2", "1"),
    case("capsnet_zero_channels", lambda: tiny_capsnet(conv_channels=0), DescendValueError, "conv_channels", ">= 1",
         "0"),
    case("capsnet_unknown_option", lambda: tiny_capsnet(iterations=3), DescendTypeError, "CapsNet", "'iterations'",
         "routing_iters"),
    case("capsnet_flat_images", lambda: tiny_capsnet()(ones(2, 784)), ShapeError, "(2, 784)", "(N, 1, H, W)",
         "shape='images'"),
    case("capsnet_images_of_another_size", lambda: tiny_capsnet()(ones(2, 1, 20, 20)), ShapeError, "(2, 1, 20, 20)",
         "(N, 1, 28, 28)"),
    case("capsnet_decode_class_out_of_range", lambda: tiny_capsnet().decode(ones(2, 10, 4), [0, 10]),
         DescendValueError, "classes", "[0, 10)", "10"),
    case("capsnet_decode_float_classes", lambda: tiny_capsnet().decode(ones(2, 10, 4), [0.5, 1.0]), ShapeError,
         "integer class", "float64"),
    case("capsnet_decode_without_a_decoder", lambda: tiny_capsnet(reconstruction=False).decode(ones(2, 10, 4), [0, 1]),
         DescendValueError, "no decoder", "reconstruction=True"),
    case("margin_loss_m_minus_above_m_plus", lambda: nn.MarginLoss(m_plus=0.4, m_minus=0.6), DescendValueError,
         "m_minus", "0.6", "[0, 0.4]"),
    case("margin_loss_negative_reconstruction_weight", lambda: nn.MarginLoss(reconstruction_weight=-1.0),
         DescendValueError, "reconstruction_weight", ">= 0", "-1.0"),
    case("margin_loss_label_out_of_range", lambda: nn.MarginLoss()(capsule_output(), np.array([0, 10])),
         DescendValueError, "labels", "[0, 10)"),
    case("margin_loss_float_labels", lambda: nn.MarginLoss()(capsule_output(), np.array([0.0, 1.0])),
         DescendValueError, "labels", "integer", "float64"),
    case("margin_loss_label_count", lambda: nn.MarginLoss()(capsule_output(), np.array([0, 1, 2])), ShapeError,
         "(2, 10)", "(3,)"),
    case("margin_loss_reconstruction_without_a_decoder",
         lambda: nn.MarginLoss(reconstruction_weight=0.0005)(tiny_capsnet(reconstruction=False)(ones(2, 1, 28, 28)),
                                                             np.array([0, 1])),
         DescendValueError, "reconstruction=True", "reconstruction_weight=0"),
]


# -- issue 17: caller data and kernel inputs --
from descend.errors import SizeLimitError  # noqa: E402


def tampered_csr(format: str = "csr", **arrays: Any) -> Any:
    """A valid 3 x 4 sparse matrix (two values a row, CSR or `format`) with some of its arrays replaced
    afterwards, past scipy's own checks, as a user can."""
    import scipy.sparse

    matrix = scipy.sparse.csr_matrix((np.ones(6, np.float32), np.array([0, 2, 1, 3, 0, 3], np.int32),
                                      np.array([0, 2, 4, 6])), shape=(3, 4)).asformat(format)
    for name, array in arrays.items():
        setattr(matrix, name, np.asarray(array))
    return matrix


def sgd_fit(X: Any, y: Any = (0, 1, 0), **settings: Any) -> Any:
    from descend import hogwild

    return hogwild.SGDClassifier(epochs=1, **settings).fit(X, np.asarray(y, dtype=object if "a" in y else None))


def factorization(rows: Any = (0, 1, 2), cols: Any = (0, 1, 0), values: Any = (1.0, 2.0, 3.0), shape: Any = None,
                  **settings: Any) -> Any:
    from descend import hogwild

    return hogwild.MatrixFactorization(epochs=1, **settings).fit(list(rows), list(cols), list(values), shape=shape)


CALLER_DATA_AND_KERNELS = [
    case("sparse_maker_beyond_memory", lambda: dc.data.make_sparse_classification(n_rows=10**9, n_features=100),
         SizeLimitError, "1000000000 x 20 nonzeros", "GB of memory", "fewer rows"),
    case("sparse_maker_beyond_int32_features", lambda: dc.data.make_sparse_classification(n_rows=2, n_features=2**31,
                                                                                         nnz_per_row=1),
         DescendValueError, "n_features", "2147483647", "2147483648"),
    case("low_rank_maker_beyond_memory", lambda: dc.data.make_low_rank_matrix(n_rows=10**6, n_cols=10**6),
         SizeLimitError, "observed entries", "GB of memory", "smaller matrix"),
    case("hogwild_sgd_column_index_beyond_n_features", lambda: sgd_fit(tampered_csr(indices=[0, 2, 1, 70, 0, 3])),
         DescendValueError, "X has a column index 70 at row 1", "n_features=4"),
    case("hogwild_sgd_huge_column_index", lambda: sgd_fit(tampered_csr(indices=np.array([0, 2, 1, 3, 0, 10**10]))),
         DescendValueError, "column index 10000000000 at row 2", "n_features=4"),
    case("hogwild_sgd_negative_column_index", lambda: sgd_fit(tampered_csr(indices=[0, -2, 1, 3, 0, 3])),
         DescendValueError, "column index -2 at row 0", "from 0"),
    case("hogwild_sgd_float_column_indices", lambda: sgd_fit(tampered_csr(indices=[0.0, 2, 1, 3, 0, 3])),
         DescendTypeError, "X.indices", "integer", "float64"),
    case("hogwild_sgd_indptr_decreasing", lambda: sgd_fit(tampered_csr(indptr=[0, 4, 2, 6])), DescendValueError,
         "X.indptr decreases at row 1", "from 4 to 2", "never decrease"),
    case("hogwild_sgd_indptr_not_ending_at_nnz", lambda: sgd_fit(tampered_csr(indptr=[0, 2, 4, 9])),
         DescendValueError, "X.indptr", "to 9", "start at 0", "nnz = 6"),
    case("hogwild_sgd_indptr_of_the_wrong_length", lambda: sgd_fit(tampered_csr(indptr=[0, 2, 6])), ShapeError,
         "X.indptr has length 3", "n_rows + 1 = 4"),
    case("hogwild_sgd_value_beyond_float32", lambda: sgd_fit(tampered_csr(data=[1.0, 1e39, 1, 1, 1, 1])),
         DescendValueError, "X holds 1e+39", "float32", "row 0"),
    case("hogwild_sgd_csc_row_index_beyond_n_rows", lambda: sgd_fit(tampered_csr("csc", indices=[0, 2, 1, 0, 1, 5])),
         DescendValueError, "X has a row index 5 at column 3", "n_rows=3"),
    case("hogwild_sgd_labels_that_do_not_sort", lambda: sgd_fit(tampered_csr(), y=(0, "a", 0)), DescendTypeError,
         "y", "one kind"),
    case("hogwild_sgd_seed_negative", lambda: sgd_fit(tampered_csr(), seed=-1), DescendValueError, "seed", ">= 0",
         "-1"),
    case("hogwild_sgd_seed_float", lambda: sgd_fit(tampered_csr(), seed=0.5), DescendTypeError, "seed", "float 0.5"),
    case("hogwild_sgd_predict_column_index_beyond_n_features",
         lambda: sgd_fit(tampered_csr()).predict(tampered_csr(indices=[0, 2, 1, 3, 0, 4])), DescendValueError,
         "X has a column index 4 at row 2", "n_features=4"),
    case("hogwild_sgd_predict_with_other_features", lambda: sgd_fit(tampered_csr()).predict(np.ones((2, 5))),
         ShapeError, "X has 5 features", "expects 4"),
    case("hogwild_factorization_row_beyond_shape", lambda: factorization(shape=(2, 2)), DescendValueError,
         "rows holds 2 at entry 2", "2 rows"),
    case("hogwild_factorization_negative_col", lambda: factorization(cols=(0, -1, 0)), DescendValueError,
         "cols", ">= 0", "-1 at entry 1"),
    case("hogwild_factorization_float_rows", lambda: factorization(rows=(0.0, 1.0, 2.5)), DescendTypeError,
         "rows", "integer indices", "float64"),
    case("hogwild_factorization_nan_value", lambda: factorization(values=(1.0, np.nan, 2.0)), DescendValueError,
         "values", "NaN", "at 1"),
    case("hogwild_factorization_shape_not_a_pair", lambda: factorization(shape=5), DescendTypeError, "shape",
         "pair (n_rows, n_cols)", "5"),
    case("hogwild_factorization_10_to_the_12_parameters", lambda: factorization(rank=10**6, shape=(10**6, 10**6)),
         SizeLimitError, "rank=1000000", "shape", "2,000,000,000,000", "GB"),
    case("hogwild_factorization_huge_index", lambda: factorization(rows=(0, 10**11, 2)), SizeLimitError,
         "100000000001", "rows and cols", "rank=10"),
    case("hogwild_factorization_seed_negative", lambda: factorization(seed=-5), DescendValueError, "seed", "-5"),
    case("hogwild_factorization_predict_beyond_shape", lambda: factorization().predict([0, 3], [0, 0]),
         DescendValueError, "rows holds 3 at entry 1", "outside the model's 3 rows"),
]


# -- issue 17: files and headers --
from descend.checkpoint import read_checkpoint  # noqa: E402
from descend.errors import CheckpointError, SizeLimitError  # noqa: E402
from descend.files import write_text  # noqa: E402


def odd_path(tmp: Any, kind: str) -> Any:
    """tmp/kind made into something no writer may replace: a FIFO, a link to nothing, a link to itself."""
    import os

    path = tmp / kind
    {"fifo": lambda: os.mkfifo(path), "dangling": lambda: os.symlink("nowhere", path),
     "looping": lambda: os.symlink(kind, path)}[kind]()
    return path


def rewritten_header(tmp: Any, old: bytes, new: bytes) -> Any:
    """A good model file with `old` replaced by `new` in its header (its length fixed, its checksum not)."""
    import struct

    path = saved(tmp)
    raw = path.read_bytes()
    size = struct.unpack("<Q", raw[:8])[0]
    header = raw[8 : 8 + size].replace(old, new)
    assert header != raw[8 : 8 + size], old
    path.write_bytes(struct.pack("<Q", len(header)) + header + raw[8 + size :])
    return path


def crafted_file(tmp: Any, tensors: Any = None, **metadata: str) -> Any:
    """A model file with a valid checksum, its tensors and metadata as given (the good file's where not), written
    with the writer's caps lifted: as another tool could write it."""
    import json
    from unittest import mock

    from descend import io

    model = nn.MLP([2, 3, 2], rng=0)
    good = {"architecture": json.dumps(nn.module_spec(model)), "dtype": "float32"}
    weights = {f"model/{name}": value for name, value in model.state_dict().items()}
    with mock.patch.object(io, "MAX_MODULES", 10**6):
        return io.write_file(tmp / "crafted.dsc", weights if tensors is None else tensors(weights),
                             {**good, **metadata})


def dropouts(count: int) -> str:
    import json

    layer = {"class": "descend.nn.layers.Dropout", "config": {"p": 0.1}}
    return json.dumps({"class": "descend.nn.layers.Sequential", "config": {"layers": [layer] * count}})


def figure_to(path: Any) -> Any:
    from descend.viz.figures import new_figure, save_figure

    return save_figure(new_figure(1, 1), path)


def fit_with_checkpoint(folder: Any) -> Any:
    """A tiny fit that checkpoints into `folder`."""
    model = nn.MLP([2, 3, 2], rng=0)
    return dc.fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), make_moons(n=8, seed=0),
                  progress=False, checkpoint=folder)


FILES_AND_HEADERS = [
    case("save_over_a_fifo", lambda tmp: dc.save(nn.MLP([2, 3, 2], rng=0), odd_path(tmp, "fifo")), DescendValueError,
         "path", "is a FIFO", "regular files", needs="tmp_path"),
    case("save_through_a_dangling_link", lambda tmp: dc.save(nn.MLP([2, 3, 2], rng=0), odd_path(tmp, "dangling")),
         DescendValueError, "path", "symbolic link to 'nowhere'", "does not exist", needs="tmp_path"),
    case("save_through_a_looping_link", lambda tmp: dc.save(nn.MLP([2, 3, 2], rng=0), odd_path(tmp, "looping")),
         DescendValueError, "path", "symbolic link that loops", needs="tmp_path"),
    case("save_a_path_with_a_nul_byte", lambda tmp: dc.save(nn.MLP([2, 3, 2], rng=0), f"{tmp}/out\0.dsc"),
         DescendValueError, "path", "NUL byte", needs="tmp_path"),
    case("save_figure_to_a_folder", lambda tmp: figure_to(tmp), DescendValueError, "path", "is a folder",
         needs="tmp_path"),
    case("write_text_over_a_fifo_names_the_option", lambda tmp: write_text(odd_path(tmp, "fifo"), "x", name="--out"),
         DescendValueError, "--out", "is a FIFO", needs="tmp_path"),
    case("load_a_path_with_a_nul_byte", lambda tmp: dc.load(f"{tmp}/m\0.dsc"), DescendValueError, "path",
         "NUL byte", needs="tmp_path"),
    case("load_a_fifo", lambda tmp: dc.load(odd_path(tmp, "fifo")), ModelFileError, "fifo", "not a regular file",
         needs="tmp_path"),
    case("load_a_file_without_a_checksum", lambda tmp: dc.load(rewritten_header(tmp, b'"sha256":', b'"sha257":')),
         ModelFileError, "no SHA-256", "refuses such files", needs="tmp_path"),
    case("load_infinity_in_a_shape",
         lambda tmp: dc.load(rewritten_header(tmp, b'"shape":[2,3]', b'"shape":[Infinity,3]')), ModelFileError,
         "good.dsc", "Infinity", "only finite numbers", needs="tmp_path"),
    case("load_a_5000_digit_offset", lambda tmp: dc.load(rewritten_header(tmp, b'"data_offsets":[0,', b'"data_offsets":['
                                                                         + b"9" * 5000 + b",")),
         ModelFileError, "integer of 5000 digits", "at most 50", needs="tmp_path"),
    case("load_a_header_claiming_9_mb", lambda tmp: dc.load(damaged(tmp, lambda raw: (9 * 2**20).to_bytes(8, "little")
                                                                     + b"{" + bytes(9 * 2**20))),
         ModelFileError, "header claims 9437184 bytes", "at most 8388608", needs="tmp_path"),
    case("load_int32_weights", lambda tmp: dc.load(crafted_file(tmp, lambda weights: {
        **weights, "model/network.layers.0.weight": weights["model/network.layers.0.weight"].astype(np.int32)})),
         ModelFileError, "network.layers.0.weight", "has dtype I32", "expected F32", "not cast", needs="tmp_path"),
    case("load_4097_modules", lambda tmp: dc.load(crafted_file(tmp, lambda weights: {}, architecture=dropouts(4_096))),
         ModelFileError, "4097 modules", "at most 4096", needs="tmp_path"),
    case("save_4097_modules", lambda tmp: dc.save(nn.Sequential(*[nn.Dropout(0.1, rng=0) for _ in range(4_096)]),
                                                  tmp / "out.dsc"),
         SizeLimitError, "out.dsc", "4097 modules", "at most 4096", "a reader would refuse it", needs="tmp_path"),
    case("load_an_architecture_nested_65_deep", lambda tmp: dc.load(crafted_file(
        tmp, architecture='{"class": "descend.nn.layers.Dropout", "config": {"rng": ' + "[" * 63 + "]" * 63 + "}}")),
         ModelFileError, "architecture", "nested deeper than 64", needs="tmp_path"),
    case("fit_into_a_checkpoint_folder_with_a_nul_byte", lambda tmp: fit_with_checkpoint(f"{tmp}/run\0"),
         DescendValueError, "checkpoint", "NUL byte", needs="tmp_path"),
    case("read_a_checkpoint_whose_record_is_a_list",
         lambda tmp: read_checkpoint(crafted_file(tmp, training="[]", optimizer="{}")), CheckpointError,
         "training state is []", "progress, step", needs="tmp_path"),
]


# a new entry point gets its own section above and its list here
BAD_INPUTS = [
    *TENSORS, *ELEMENTWISE, *MATMUL, *REDUCTIONS, *SHAPES, *CONV_OPS, *RECURRENT_OPS,
    *DENSE_LAYERS, *CONV_LAYERS, *RECURRENT_LAYERS, *MODELS, *LOSSES, *OPTIMIZERS,
    *DATASETS, *LOADERS, *SYNTHETIC, *SCIKIT_LEARN, *SPARK, *TRAINING, *FILES, *CAPSULES,
    *CALLER_DATA_AND_KERNELS,
    *FILES_AND_HEADERS,
]


def matching_builtin(error_class: type[Exception]) -> type[Exception]:
    """The built-in a descend error class also is: ValueError, TypeError or FloatingPointError."""
    return next(builtin for builtin in (ValueError, TypeError, FloatingPointError) if issubclass(error_class, builtin))


def test_case_ids_are_unique():
    names = [row.name for row in BAD_INPUTS]
    assert len(names) == len(set(names)), sorted(name for name in names if names.count(name) > 1)


@pytest.mark.parametrize("row", BAD_INPUTS, ids=[row.name for row in BAD_INPUTS])
def test_bad_input_gets_a_descend_error_that_names_it(row: Case, request: pytest.FixtureRequest):
    arguments = [request.getfixturevalue(row.needs)] if row.needs else []
    with pytest.raises(row.error) as raised:
        row.call(*arguments)
    error = raised.value
    assert type(error) is row.error, f"{type(error).__name__}: {error}"
    assert isinstance(error, DescendError) and isinstance(error, matching_builtin(row.error))
    message = str(error)
    missing = [word for word in row.words if word not in message]
    assert not missing, f"{missing} not in the message: {message}"
    if row.needs == "tmp_path":  # nothing written half: no output file and no temporary file stays behind
        left = [path.name for path in arguments[0].rglob("*") if path.name.startswith(("out", "."))]
        assert not left, f"left behind: {left}"
# -- the command line: bad usage exits 2, a refused file exits 1, each with one line that names the option -----
class CommandCase(NamedTuple):
    """One bad command line: its arguments (given tmp_path), the exit code and words its message must hold."""

    name: str
    arguments: Callable[[Any], list[str]]
    exit_code: int
    words: tuple[str, ...]


def command(name: str, arguments: Callable[[Any], list[str]], exit_code: int, *words: str) -> CommandCase:
    """A row of the command-line table: command("what_is_wrong", lambda tmp: [...], 2, "word", ...)."""
    return CommandCase(name, arguments, exit_code, words)


def rows_file(tmp: Any, rows: np.ndarray, name: str = "rows.npy") -> str:
    """Feature rows saved as a .npy file in tmp; its path."""
    np.save(tmp / name, rows)
    return str(tmp / name)


def written(tmp: Any, name: str, text: str) -> str:
    (tmp / name).write_text(text)
    return str(tmp / name)


def table(tmp: Any, label: list[Any] | None = None) -> str:
    """A two-row Parquet table in tmp with the columns pixels (lists of 2 floats) and digit; its path."""
    import pyarrow as pa
    import pyarrow.parquet as parquet

    path = tmp / "table.parquet"
    parquet.write_table(pa.table({"pixels": pa.array([[0.0, 1.0], [1.0, 0.0]]), "digit": label or [0, 1]}), path)
    return str(path)


def folder(tmp: Any, name: str) -> str:
    """An empty folder in tmp; its path."""
    (tmp / name).mkdir()
    return str(tmp / name)


def trained_run(tmp: Any) -> str:
    """A real, tiny `descend train` run folder to resume (digits, 1 epoch, 8 hidden units, 50 rows)."""
    from click.testing import CliRunner

    from descend.cli import main

    folder = tmp / "run"
    result = CliRunner().invoke(main, ["train", "--data", "digits", "--epochs", "1", "--hidden", "8", "--limit", "50",
                                       "--quiet", "--out", str(folder)])
    assert result.exit_code == 0, result.output
    return str(folder)


COMMAND_LINES = [
    command("train_epochs_zero", lambda tmp: ["train", "--epochs", "0"], 2, "--epochs", "0", "x>=1"),
    command("train_lr_nan", lambda tmp: ["train", "--lr", "nan"], 2, "--lr", "'nan'", "finite"),
    command("train_lr_negative", lambda tmp: ["train", "--lr", "-1"], 2, "--lr", "-1", "x>0"),
    command("train_dropout_above_one", lambda tmp: ["train", "--dropout", "1.5"], 2, "--dropout", "1.5", "0<=x<1"),
    command("train_batch_size_zero", lambda tmp: ["train", "--batch-size", "0"], 2, "--batch-size", "0", "x>=1"),
    command("train_unknown_model", lambda tmp: ["train", "--model", "transformer"], 2, "--model", "'transformer'",
            "'mlp'"),
    command("train_unknown_data", lambda tmp: ["train", "--data", "cifar"], 2, "--data", "'cifar'", "'mnist'"),
    command("train_unknown_option", lambda tmp: ["train", "--epoch", "3"], 2, "No such option", "--epoch"),
    command("train_hidden_not_numbers", lambda tmp: ["train", "--hidden", "12,x"], 2, "--hidden", "'12,x'", "512,256"),
    command("train_hidden_zero", lambda tmp: ["train", "--hidden", "0"], 2, "--hidden", "'0'", "positive"),
    command("train_checkpoint_every_zero", lambda tmp: ["train", "--checkpoint-every", "0"], 2, "--checkpoint-every",
            "'0'", "positive"),
    command("train_checkpoint_every_unknown", lambda tmp: ["train", "--checkpoint-every", "hourly"], 2,
            "--checkpoint-every", "'hourly'", "'epoch'"),
    command("train_workers_without_hogwild", lambda tmp: ["train", "--workers", "2"], 2, "--workers",
            "--engine hogwild"),
    command("train_char_model_on_images", lambda tmp: ["train", "--model", "char-lstm", "--data", "mnist"], 2,
            "char-lstm", "mnist", "text"),
    command("train_capsnet_on_small_digits", lambda tmp: ["train", "--model", "capsnet", "--data", "digits"], 2,
            "capsnet", "28x28", "--data mnist"),
    command("train_cnn_on_spark", lambda tmp: ["train", "--model", "cnn", "--engine", "spark"], 2, "--engine spark",
            "mlp or logistic"),
    command("train_resume_missing_folder", lambda tmp: ["train", "--resume", str(tmp / "nowhere")], 2, "--resume",
            "nowhere", "does not exist"),
    command("train_resume_a_folder_of_no_run", lambda tmp: ["train", "--resume", str(tmp)], 2, "--resume",
            "run.json"),
    command("train_resume_changing_an_option", lambda tmp: ["train", "--resume", trained_run(tmp), "--lr", "0.5"], 2,
            "--resume", "--lr cannot change", "--epochs"),
    command("train_table_without_the_features_column", lambda tmp: ["train", "--data", table(tmp), "--out",
            str(tmp / "out-run")], 1, "features", "no column 'features'", "'pixels', 'digit'"),
    command("train_table_label_of_strings", lambda tmp: ["train", "--data", table(tmp, label=["a", "b"]), "--features",
            "pixels", "--label", "digit", "--out", str(tmp / "out-run")], 1, "label column 'digit' holds string"),
    command("train_table_not_parquet", lambda tmp: ["train", "--data", written(tmp, "rows.parquet", "1,2\n"), "--out",
            str(tmp / "out-run")], 1, "rows.parquet", "not a readable Parquet file"),
    command("train_table_missing", lambda tmp: ["train", "--data", str(tmp / "none.parquet")], 2, "--data",
            "none.parquet", "does not exist"),
    command("train_table_with_cnn", lambda tmp: ["train", "--data", table(tmp), "--model", "cnn"], 2, "--model cnn",
            ".parquet", "mlp or logistic"),
    command("train_table_on_hogwild", lambda tmp: ["train", "--data", table(tmp), "--engine", "hogwild"], 2,
            "--engine hogwild", ".parquet", "--engine local"),
    command("train_label_without_a_table", lambda tmp: ["train", "--data", "digits", "--label", "y"], 2, "--label",
            ".parquet", "--data digits"),
    command("evaluate_table_without_the_label_column", lambda tmp: ["evaluate", str(saved(tmp)), "--data", table(tmp),
            "--features", "pixels"], 1, "label", "no column 'label'", "'pixels', 'digit'"),
    command("evaluate_table_of_another_width", lambda tmp: ["evaluate", f"{trained_run(tmp)}/model.dsc", "--data",
            table(tmp), "--features", "pixels", "--label", "digit"], 2, "table.parquet has 2 features per example",
            "expects 64"),
    command("evaluate_table_with_a_cnn", lambda tmp: ["evaluate", model_file(
        tmp, nn.SimpleCNN(10, image_size=8, rng=0)), "--data", table(tmp), "--features", "pixels", "--label", "digit"], 2, "SimpleCNN takes images",
            "--data mnist or digits"),
    command("evaluate_label_without_a_table", lambda tmp: ["evaluate", str(saved(tmp)), "--data", "digits", "--label",
            "y"], 2, "--label", ".parquet", "--data digits"),
    command("predict_features_beside_a_npy", lambda tmp: predicting(tmp, rows_file(tmp, np.ones((2, 2))), "--features",
            "pixels"), 2, "--features", ".parquet INPUT", "rows.npy"),
    command("predict_table_without_the_features_column", lambda tmp: predicting(tmp, table(tmp)), 1, "features",
            "no column 'features'"),
    command("predict_a_fifo", lambda tmp: predicting(tmp, str(odd_path(tmp, "fifo"))), 2, "/fifo'",
            "not a regular file", "FIFO"),
    command("predict_a_folder", lambda tmp: predicting(tmp, folder(tmp, "rows")), 2, "rows", "is a folder",
            ".parquet table"),
    command("train_config_unknown_key", lambda tmp: ["train", "--config", written(tmp, "run.toml", "epoch = 3\n")], 2,
            "run.toml", "'epoch'", "epochs"),
    command("train_config_not_toml", lambda tmp: ["train", "--config", written(tmp, "run.toml", "epochs = [\n")], 2,
            "run.toml", "not valid TOML"),
    command("evaluate_missing_model", lambda tmp: ["evaluate", str(tmp / "missing.dsc")], 2, "MODEL_PATH",
            "missing.dsc", "does not exist"),
    command("evaluate_a_truncated_model", lambda tmp: ["evaluate", str(damaged(tmp, lambda raw: raw[:100]))], 1,
            "error:", "truncated"),
    command("evaluate_a_pickle", lambda tmp: ["evaluate", str(planted_pickle(tmp))], 1, "error:", "pickle"),
    command("predict_rows_with_nan", lambda tmp: ["predict", str(saved(tmp)), rows_file(tmp, np.array(
        [[1.0, 2.0], [np.nan, 0.0]])), "--out", str(tmp / "out.csv")], 2, "rows.npy", "row 1", "NaN"),
    command("predict_rows_of_the_wrong_width", lambda tmp: ["predict", str(saved(tmp)), rows_file(tmp, np.ones(
        (2, 5))), "--out", str(tmp / "out.csv")], 1, "error:", "(2, 5)", "(N, 2)"),
    command("predict_rows_of_text", lambda tmp: ["predict", str(saved(tmp)), rows_file(tmp, np.array(
        [["a", "b"]])), "--out", str(tmp / "out.csv")], 2, "rows.npy", "<U1", "numbers"),
    command("predict_rows_of_another_format", lambda tmp: ["predict", str(saved(tmp)), written(
        tmp, "rows.txt", "1 2\n"), "--out", str(tmp / "out.csv")], 2, "INPUT", ".npy or .csv", "rows.txt"),
    command("predict_batch_size_zero", lambda tmp: ["predict", str(saved(tmp)), rows_file(tmp, np.ones((2, 2))),
                                                    "--batch-size", "0"], 2, "--batch-size", "0", "x>=1"),
    command("generate_from_a_run_of_no_char_model", lambda tmp: ["generate", "--run", str(tmp)], 2, "no model.dsc",
            "--model char-lstm"),
    command("explain_not_a_formula", lambda tmp: ["explain", "import os", "x=1"], 2, "the formula", "'import os'",
            "invalid syntax"),
    command("explain_a_call_that_is_not_maths", lambda tmp: ["explain", "__import__('os')", "x=1"], 2,
            "a formula may use"),
    command("explain_a_value_without_a_number", lambda tmp: ["explain", "x*y", "x=1", "y"], 2, "NAME=NUMBER", "'y'"),
    command("anomaly_a_digit_both_ways", lambda tmp: ["anomaly", "--normal", "0,1", "--anomalous", "1"], 2,
            "both normal and anomalous", "[1]"),
    command("anomaly_digit_ten", lambda tmp: ["anomaly", "--anomalous", "10"], 2, "--anomalous", "0..9", "'10'"),
    command("hogwild_zero_workers", lambda tmp: ["hogwild", "--workers", "0"], 2, "--workers", "positive", "'0'"),
    command("hogwild_unknown_lock", lambda tmp: ["hogwild", "--lock", "spin"], 2, "--lock", "'spin'", "mutex"),
    command("lr_find_too_few_steps", lambda tmp: ["lr-find", "--steps", "3"], 2, "--steps", "3", "x>=8"),
    command("bench_unknown_benchmark", lambda tmp: ["bench", "transformer"], 2, "transformer"),
    command("zero_threads", lambda tmp: ["--threads", "0", "tour", "--sections", "1"], 2, "--threads", "0 is not",
            "x>=1"),
    command("unknown_kernels", lambda tmp: ["--kernels", "cuda", "tour", "--sections", "1"], 2, "--kernels",
            "'cuda'", "numba", "numpy"),
    command("tour_section_not_a_number", lambda tmp: ["tour", "--sections", "one"], 2, "--sections", "'one'", "1,5,13"),
]


# -- issue 17: command lines --
# Every input reaches the user as one line (exit 2 for bad usage, 1 for a refused file), never a traceback:
# odd .npy and .csv files, a --config of the wrong encoding or value types, seeds, absurd sizes, a file that
# holds no model, a run folder that holds another run.
def model_file(tmp: Any, module: nn.Module, name: str = "model.dsc") -> str:
    """`module` saved as a model file in tmp; its path."""
    return str(dc.save(module, tmp / name))


def written_bytes(tmp: Any, name: str, data: bytes) -> str:
    (tmp / name).write_bytes(data)
    return str(tmp / name)


def object_rows(tmp: Any) -> str:
    """A .npy of Python objects, which only pickle can store."""
    np.save(tmp / "rows.npy", np.array([[1, None]], dtype=object), allow_pickle=True)
    return str(tmp / "rows.npy")


def predicting(tmp: Any, rows: str, *options: str, model: nn.Module | None = None) -> list[str]:
    """`descend predict` of a small MLP (2 features, 2 classes) or `model` on the rows file `rows`."""
    return ["predict", model_file(tmp, model if model is not None else nn.MLP([2, 3, 2], rng=0)), rows, *options]


def training(tmp: Any, *options: str) -> list[str]:
    """`descend train` of a small MLP on digits into tmp/out-run, which a refused run must not leave behind."""
    return ["train", "--data", "digits", "--hidden", "8", "--limit", "50", "--epochs", "1", "--quiet",
            "--out", str(tmp / "out-run"), *options]


def configured(tmp: Any, toml: str) -> list[str]:
    """`descend train` as `training` makes it, with --config tmp/run.toml holding `toml`."""
    return training(tmp, "--config", written(tmp, "run.toml", toml))


COMMAND_LINES += [
    command("predict_a_0d_npy", lambda tmp: predicting(tmp, rows_file(tmp, np.float32(1.0))), 2, "rows.npy",
            "single number", "0-d"),
    command("predict_an_empty_npy", lambda tmp: predicting(tmp, rows_file(tmp, np.zeros((0, 2)))), 2, "rows.npy",
            "no values", "(0, 2)"),
    command("predict_an_object_npy", lambda tmp: predicting(tmp, object_rows(tmp)), 2, "rows.npy",
            "not a .npy file of numbers", "Object arrays"),
    command("predict_a_npy_that_is_not_one", lambda tmp: predicting(tmp, written(tmp, "rows.npy", "1,2\n")), 2,
            "rows.npy", "not a .npy file of numbers"),
    command("predict_a_1d_npy", lambda tmp: predicting(tmp, rows_file(tmp, np.ones(2))), 2, "rows.npy", "(2,)",
            "rows of features", "x[None]"),
    command("predict_a_3d_npy", lambda tmp: predicting(tmp, rows_file(tmp, np.ones((3, 1, 2)))), 2, "rows.npy",
            "(3, 1, 2)", "rows of features", "reshape"),
    command("predict_a_3d_npy_into_a_cnn", lambda tmp: predicting(
        tmp, rows_file(tmp, np.ones((2, 8, 8))), model=nn.SimpleCNN(10, image_size=8, rng=0)), 2, "(2, 8, 8)",
            "one-channel images", "(N, 1, side, side)"),
    command("predict_an_empty_csv", lambda tmp: predicting(tmp, written(tmp, "rows.csv", "")), 2, "rows.csv",
            "is empty"),
    command("predict_a_header_only_csv", lambda tmp: predicting(tmp, written(tmp, "rows.csv", "a,b\n")), 2,
            "rows.csv", "header line and no rows"),
    command("predict_a_csv_not_utf8", lambda tmp: predicting(tmp, written_bytes(tmp, "rows.csv", b"x\xff,y\n1,2\n")),
            2, "rows.csv", "not UTF-8", "0xff", "offset 1"),
    command("predict_a_csv_of_words", lambda tmp: predicting(tmp, written(tmp, "rows.csv", "a,b\nx,y\n")), 2,
            "rows.csv", "numbers only"),
    command("predict_probabilities_of_a_regression", lambda tmp: predicting(
        tmp, rows_file(tmp, np.ones((2, 2))), "--probabilities", model=nn.LinearRegression(2, rng=0)), 2,
            "--probabilities is for classifiers", "LinearRegression"),
    command("predict_with_a_char_model", lambda tmp: predicting(
        tmp, rows_file(tmp, np.ones((2, 2))), model=nn.CharRNN(5, embed=2, hidden=3, rng=0)), 2, "CharRNN",
            "descend generate"),
    command("predict_with_a_loss_file", lambda tmp: ["predict", model_file(tmp, nn.CrossEntropyLoss()),
                                                     rows_file(tmp, np.ones((2, 2)))], 1, "error:",
            "holds a loss (CrossEntropyLoss), not a model"),
    command("predict_with_an_internal_class", lambda tmp: ["predict", model_file(
        tmp, importlib.import_module("descend.nn.autoencoders")._EncoderDecoder()), rows_file(tmp, np.ones((2, 2)))],
            1, "error:", "_EncoderDecoder", "not a model"),
    command("evaluate_a_loss_file", lambda tmp: ["evaluate", model_file(tmp, nn.MSELoss()), "--data", "digits"], 1,
            "error:", "holds a loss (MSELoss), not a model"),
    command("evaluate_an_autoencoder", lambda tmp: ["evaluate", model_file(tmp, nn.Autoencoder([64, 4], rng=0)),
                                                    "--data", "digits"], 2, "Autoencoder", "classifier",
            "descend predict"),
    command("generate_seed_negative", lambda tmp: ["generate", "--seed", "-1"], 2, "--seed", "-1", "x>=0"),
    command("train_seed_negative", lambda tmp: training(tmp, "--seed", "-1"), 2, "--seed", "-1", "x>=0"),
    command("train_config_seed_negative", lambda tmp: configured(tmp, "seed = -1\n"), 2, "--seed", "-1", "x>=0"),
    command("train_config_not_utf8", lambda tmp: training(tmp, "--config", written_bytes(
        tmp, "run.toml", b"epochs = 1 # \xe9t\xe9\n")), 2, "run.toml", "not UTF-8", "0xe9"),
    command("train_config_epochs_float", lambda tmp: configured(tmp, "epochs = 1.9\n"), 2, "run.toml",
            "epochs = 1.9", "float", "--epochs takes an integer"),
    command("train_config_epochs_true", lambda tmp: configured(tmp, "epochs = true\n"), 2, "run.toml",
            "epochs = true", "boolean", "--epochs takes an integer"),
    command("train_config_lr_string", lambda tmp: configured(tmp, 'lr = "0.1"\n'), 2, "run.toml", 'lr = "0.1"',
            "string", "--lr takes a number"),
    command("train_config_quiet_one", lambda tmp: configured(tmp, "quiet = 1\n"), 2, "run.toml", "quiet = 1",
            "--quiet takes true or false"),
    command("train_config_model_number", lambda tmp: configured(tmp, "model = 3\n"), 2, "run.toml", "model = 3",
            "--model takes a string"),
    command("train_config_table_not_a_table", lambda tmp: configured(tmp, "train = 5\n"), 2, "run.toml",
            "train = 5", "expected a table [train]"),
    command("train_hidden_absurd", lambda tmp: training(tmp, "--hidden", "1000000000"), 2, "--hidden", "too big",
            "(64, 1000000000)"),
    command("train_char_model_embed_absurd", lambda tmp: ["train", "--model", "char-rnn", "--text", written(
        tmp, "play.txt", "to be or not to be\n" * 20), "--seq-length", "8", "--embed", "1000000000000", "--out",
        str(tmp / "out-run")], 2, "--embed", "too big"),
    command("train_workers_beyond_the_cores", lambda tmp: training(tmp, "--engine", "hogwild", "--workers", "100000"),
            2, "--workers 100000", "at most", "per core"),
    command("train_resume_and_overwrite", lambda tmp: ["train", "--resume", str(tmp), "--overwrite"], 2, "--resume",
            "--overwrite", "give one"),
    command("train_into_the_folder_of_another_run", lambda tmp: ["train", "--data", "digits", "--out",
                                                                 trained_run(tmp)], 2,
            "holds another run", "run.json", "--resume", "--overwrite"),
    command("hogwild_workers_beyond_the_cores", lambda tmp: ["hogwild", "--workers", "1,100000"], 2, "--workers",
            "at most", "'1,100000'"),
    command("anomaly_code_absurd", lambda tmp: ["anomaly", "--code", "1000000000000", "--out", str(tmp / "out-a")], 2,
            "--code", "too big"),
    command("lr_find_hidden_absurd", lambda tmp: ["lr-find", "--hidden", "1000000000", "--out", str(tmp / "out-lr")],
            2, "--hidden", "too big"),
    command("train_on_a_spark_master_that_does_not_answer", lambda tmp: [
        "train", "--data", "digits", "--engine", "spark", "--master", "spark://127.0.0.1:9", "--out",
        str(tmp / "out-s")], 1, "master 'spark://127.0.0.1:9' does not answer", "descend spark-cluster up"),
    command("spark_cluster_down_where_none_runs", lambda tmp: ["spark-cluster", "down", str(tmp)], 1,
            "holds no running cluster"),
    command("tune_zero_trials", lambda tmp: ["tune", "--data", "digits", "--space", written(
        tmp, "space.toml", "[space]\nlr = { loguniform = [0.01, 0.5] }\n"), "--trials", "0", "--out",
        str(tmp / "out-t")], 2, "--trials", "at least 1; got 0"),
    command("tune_a_reversed_range", lambda tmp: ["tune", "--data", "digits", "--space", written(
        tmp, "space.toml", "[space]\nmomentum = { uniform = [0.9, 0.1] }\n"), "--out", str(tmp / "out-t")], 1,
        "uniform", "[0.9, 0.1] is reversed"),
    command("tune_a_log_range_from_zero", lambda tmp: ["tune", "--data", "digits", "--space", written(
        tmp, "space.toml", "[space]\nlr = { loguniform = [0.0, 0.5] }\n"), "--out", str(tmp / "out-t")], 1,
        "log range must be above 0"),
    command("tune_resume_a_folder_of_no_study", lambda tmp: ["tune", "--resume", str(tmp)], 2,
            "holds no `descend tune` study"),
    command("explain_a_variable_given_twice", lambda tmp: ["explain", "x*2", "x=1", "x=2"], 2, "x is given twice",
            "give each variable once"),
]


@pytest.mark.parametrize("row", COMMAND_LINES, ids=[row.name for row in COMMAND_LINES])
def test_a_bad_command_line_exits_with_a_one_line_error_that_names_it(row: CommandCase, tmp_path):
    from click.testing import CliRunner

    from descend.cli import main

    arguments = row.arguments(tmp_path)
    result = CliRunner().invoke(main, arguments)
    assert result.exit_code == row.exit_code, result.output
    message = result.output
    missing = [word for word in row.words if word not in message]
    assert not missing, f"{missing} not in the message: {message}"
    left = [path.name for path in tmp_path.rglob("*") if path.name.startswith(("out", "."))]
    assert not left, f"left behind: {left}"

