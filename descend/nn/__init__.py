"""Layers, losses and ready models, PyTorch's names and Keras's habit of keeping each layer's config."""

from descend.nn.autoencoders import (
    Autoencoder, ConvAutoencoder, DenoisingAutoencoder, SparseAutoencoder, TiedLinear, VariationalAutoencoder,
)
from descend.nn.capsules import CapsNet, CapsuleOutput, DigitCapsules, PrimaryCapsules
from descend.nn.conv import (
    AdaptiveAvgPool2d, AvgPool2d, BatchNorm1d, BatchNorm2d, Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d, MaxPool2d,
    Upsample,
)
from descend.nn.layers import (
    ELU, Dropout, Flatten, LeakyReLU, Linear, Maxout, ReLU, Sequential, Sigmoid, Softmax, Tanh,
)
from descend.nn.losses import BCEWithLogitsLoss, CrossEntropyLoss, MarginLoss, MSELoss, NLLLoss
from descend.nn.models import MLP, CharRNN, LeNet5, LinearRegression, LogisticRegression, SimpleCNN
from descend.nn.recurrent import GRU, LSTM, RNN, Embedding, GRUCell, LSTMCell, RNNCell
from descend.nn.module import Module, build_module, module_spec, register_function
from descend.nn.parameter import Parameter, ParameterBuffer

__all__ = [
    "Autoencoder", "ConvAutoencoder", "DenoisingAutoencoder", "SparseAutoencoder", "TiedLinear", "Upsample",
    "VariationalAutoencoder",
    "CapsNet", "CapsuleOutput", "DigitCapsules", "MarginLoss", "PrimaryCapsules",
    "CharRNN", "Embedding", "GRU", "GRUCell", "LSTM", "LSTMCell", "RNN", "RNNCell",
    "AdaptiveAvgPool2d", "AvgPool2d", "BatchNorm1d", "BatchNorm2d", "Conv1d", "Conv2d", "ConvTranspose1d",
    "ConvTranspose2d", "LeNet5", "MaxPool2d",
    "SimpleCNN", "BCEWithLogitsLoss", "CrossEntropyLoss", "Dropout", "ELU", "Flatten", "LeakyReLU", "Linear",
    "LinearRegression", "LogisticRegression", "MLP", "MSELoss", "Maxout", "Module", "NLLLoss", "Parameter",
    "ParameterBuffer", "ReLU", "Sequential", "Sigmoid", "Softmax", "Tanh", "build_module", "module_spec",
    "register_function",
]
