"""The errors descend raises: each names what came and what was expected.

Every class subclasses the matching built-in, so `except ValueError` still
catches a `ShapeError`.
"""


class DescendError(Exception):
    """Base of every error descend raises on purpose."""


class DescendValueError(DescendError, ValueError):
    """A value is out of range or inconsistent with the others."""


class DescendTypeError(DescendError, TypeError):
    """An argument has the wrong type or dtype."""


class ShapeError(DescendValueError):
    """Shapes that do not fit together: both are named in the message."""


class IndexOutOfRangeError(ShapeError, IndexError):
    """An index that does not fit the tensor's shape (also an IndexError, so iteration stops)."""


class NonFiniteError(DescendError, FloatingPointError):
    """A loss or gradient became NaN or infinite during training."""


class ModelFileError(DescendValueError):
    """A model file that is truncated, not a descend file, or from another format version."""


class DataError(DescendValueError):
    """A data set that is missing, damaged (checksum mismatch) or malformed."""
