"""The errors descend raises: each names what came and what was expected.

Every class subclasses the matching built-in, so `except ValueError` still
catches a `ShapeError`. Its warnings are here too, with `warn`, which points
them at the user's own line.
"""

import os
import sys
import warnings


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
    """A loss or gradient became NaN or infinite during training.

    Besides the message, what a program can act on, where known (else None):
    the `step` and `epoch`, the `layer` whose op made the first bad value, the
    first `parameter` whose gradient it reached, and the last good `checkpoint`.
    """

    def __init__(self, message: str, step: int | None = None, epoch: int | None = None, layer: str | None = None,
                 parameter: str | None = None, checkpoint: object = None):
        super().__init__(message)
        self.step, self.epoch, self.layer, self.parameter, self.checkpoint = step, epoch, layer, parameter, checkpoint


class ModelFileError(DescendValueError):
    """A model file that is truncated, not a descend file, or from another format version."""


class CheckpointError(ModelFileError):
    """A checkpoint whose training record (epoch, step, history, generators, callbacks...) is malformed."""


class SizeLimitError(DescendValueError):
    """A request for more values than a limit allows, refused before anything is allocated."""


class DataError(DescendValueError):
    """A data set that is missing, damaged (checksum mismatch) or malformed."""


class CheckpointWarning(UserWarning):
    """A damaged checkpoint was skipped on resuming and moved aside (into damaged/); the one before it was used."""


class ParameterBufferWarning(UserWarning):
    """A model's parameters moved to a new flat buffer (a submodule was replaced): an existing optimizer is stale."""


class ModelFileWarning(UserWarning):
    """A model file that loads but will not compute anything useful: weights that are NaN or infinite."""


_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def warn(message: str, category: type[Warning]) -> None:
    """warnings.warn(message, category) attributed to the first caller outside descend: the user's own line.

    A fixed stacklevel would name a descend file whenever the call passes
    through one more function (a wrapper, an engine) than it was counted for.
    """
    level, frame = 2, sys._getframe(1)  # stacklevel 2 is warn's caller, frame 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE):
        level, frame = level + 1, frame.f_back
    warnings.warn(message, category, stacklevel=level)
