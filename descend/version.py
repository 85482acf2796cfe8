"""The version of descend, in one place: the package root, model files, ONNX exports and the CLI read it here,
and pyproject.toml takes it from here when the package is built."""

__version__ = "0.1.0"
