"""What a model's training inputs went through, kept in its model file so that predictions get inputs like them.

`descend train` scales a data set's raw values before training (digits' pixel counts 0..16 are divided
by 16, MNIST's pixel values 0..255 by 255) and saves a `Preprocessing` with the model
(`io.save(..., preprocessing=)`). `descend predict` reads it back (`io.read_preprocessing`) and
`Preprocessing.prepare` decides what to do with the rows it is given:

1. one example's number of values differs from the training inputs': a ShapeError naming both;
2. the values lie in the range of the training inputs: they are used as they are;
3. else, they lie in the range the training data had before it was scaled, and their spread is nearer
   that range's width than the training inputs' (compared as ratios: for digits, scaled by 16, a spread
   over 4; for MNIST, scaled by 255, over 16): they are scaled as it was;
4. else: they are used as they are, with a warning naming the range seen and the range expected.

Rule 3 asks for the spread as well, so that inputs a little brighter than any training input (MNIST
pixels in [0, 1.02]) are not taken for raw values and divided by 255.

The range kept is global (the smallest and the largest value of all the training inputs), not one per
feature: a per-feature range of pixels is degenerate (the corner pixels of the digits are 0 in every
training image, so any new image with ink there would be out of range), while the mistake to catch is a
whole input on another scale (x16, x255, standardised), which moves the global range far; and a record of
six values has nothing for a hostile file to inflate.

>>> import numpy as np
>>> record = Preprocessing.of(np.array([[0.0, 0.5], [1.0, 0.25]], np.float32), "pixels", scale=16)
>>> record.raw_range
(0.0, 16.0)
>>> prepared = record.prepare(np.array([[0.0, 12.0]]), "rows.npy")
>>> prepared.x.tolist(), prepared.scaled
([[0.0, 0.75]], True)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import numpy as np

from descend.errors import DescendTypeError, DescendValueError, ShapeError

#: axes of one example's shape (as many as a model file's tensors may have)
MAX_DIMS = 32
#: characters of a data set's name (it is printed in messages)
MAX_SOURCE_CHARS = 80
#: how far, as a fraction of the training range's width, values may lie outside it and still count as in it:
#: a CSV's rounded digits or float32 rounding must not warn, while a wrong scale is off by a factor of 16 or 255
RANGE_SLACK = 0.01


class Prepared(NamedTuple):
    """Rows as a model takes them (`x`), whether the recorded scaling was applied to them (`scaled`), and what
    to tell the user (`note`: what was done, or why the rows look wrong; None when they were fine as given)."""

    x: np.ndarray
    scaled: bool
    note: str | None


@dataclass(frozen=True)
class Preprocessing:
    """How a model's training inputs were made from raw data, and what they looked like.

    input = (raw - shift) / scale, for the data set `source`; one example's shape is
    `input_shape` (without the batch axis); every training input lies in [low, high].

    >>> Preprocessing("digits", (64,), low=0.0, high=1.0, scale=16).record()
    {'source': 'digits', 'input_shape': [64], 'low': 0.0, 'high': 1.0, 'shift': 0.0, 'scale': 16.0}
    """

    source: str
    input_shape: tuple[int, ...]
    low: float
    high: float
    shift: float = 0.0
    scale: float = 1.0

    def __post_init__(self) -> None:
        _check("source", self.source, isinstance(self.source, str) and 0 < len(self.source) <= MAX_SOURCE_CHARS
               and self.source.isprintable(), f"a printable name of 1 to {MAX_SOURCE_CHARS} characters")
        shape = self.input_shape
        _check("input_shape", shape, isinstance(shape, tuple) and 0 < len(shape) <= MAX_DIMS
               and all(type(side) is int and side >= 1 for side in shape),
               f"one example's shape: 1 to {MAX_DIMS} whole numbers >= 1")
        for name in ("low", "high", "shift", "scale"):
            value = getattr(self, name)
            _check(name, value, type(value) in (int, float) and math.isfinite(value), "a finite number",
                   DescendTypeError if type(value) not in (int, float) else DescendValueError)
        _check("scale", self.scale, self.scale > 0, "a number > 0: raw values are divided by it")
        _check("high", self.high, self.high >= self.low, f"at least low ({self.low})")
        _check("scale", self.scale, all(map(math.isfinite, self.raw_range)),
               f"a number that keeps the raw range finite (low {self.low}, high {self.high}, shift {self.shift})")

    @classmethod
    def of(cls, x: np.ndarray, source: str, shift: float = 0.0, scale: float = 1.0) -> Preprocessing:
        """The record of training inputs `x` (N, ...), made from raw values as (raw - shift) / scale.

        >>> Preprocessing.of(np.zeros((3, 1, 8, 8)), "digits", scale=16).input_shape
        (1, 8, 8)
        """
        x = np.asarray(x)
        if x.ndim < 2 or len(x) == 0:
            raise ShapeError(f"Preprocessing.of: x has shape {x.shape}; expected training inputs (N, ...) with N >= 1")
        return cls(source, tuple(int(side) for side in x.shape[1:]), float(x.min()), float(x.max()),
                   float(shift), float(scale))

    @classmethod
    def from_record(cls, record: Any) -> Preprocessing:
        """The Preprocessing a record (as `record()` makes it, read back from JSON) describes, every field checked.

        >>> Preprocessing.from_record({"source": "digits", "input_shape": [64], "low": 0, "high": 1e999,
        ...                            "shift": 0, "scale": 16})
        Traceback (most recent call last):
        ...
        descend.errors.DescendValueError: Preprocessing: high is inf; expected a finite number
        """
        names = list(cls.__dataclass_fields__)
        _check("record", record, isinstance(record, dict) and set(record) == set(names),
               f"a JSON object of exactly {', '.join(names)}")
        shape = record["input_shape"]
        _check("input_shape", shape, isinstance(shape, list), "a list of whole numbers", DescendTypeError)
        return cls(**{**record, "input_shape": tuple(shape)})

    def record(self) -> dict[str, Any]:
        """What a model file keeps: every field, as JSON takes it."""
        return {**asdict(self), "input_shape": list(self.input_shape), "low": float(self.low),
                "high": float(self.high), "shift": float(self.shift), "scale": float(self.scale)}

    @property
    def features(self) -> int:
        """How many values one example holds."""
        return math.prod(self.input_shape)

    @property
    def raw_range(self) -> tuple[float, float]:
        """The range of the training data before it was scaled: [low, high] mapped back through the scaling."""
        return self.low * self.scale + self.shift, self.high * self.scale + self.shift

    def check_features(self, shape: tuple[int, ...], name: str = "x") -> None:
        """Refuse inputs of `shape` (N, ...) whose examples hold another number of values than the training inputs'
        (the shape alone: a table read from disk is checked before any of it is).

        >>> Preprocessing("digits", (64,), low=0.0, high=1.0).check_features((2, 10), "rows.npy")
        Traceback (most recent call last):
        ...
        descend.errors.ShapeError: rows.npy has 10 features per example (shape (2, 10)), but the model expects 64: it was trained on digits, examples of shape (64,); give rows (N, 64)
        """
        shape = tuple(shape)
        images = f" or arrays (N, {', '.join(map(str, self.input_shape))})" if len(self.input_shape) > 1 else ""
        expected = f"give rows (N, {self.features}){images}"
        if len(shape) < 2:
            raise ShapeError(f"{name} has shape {shape}, not examples (N, ...); {expected}")
        if math.prod(shape[1:]) != self.features:
            raise ShapeError(f"{name} has {math.prod(shape[1:])} features per example (shape {shape}), but the model "
                             f"expects {self.features}: it was trained on {self.source}, examples of shape "
                             f"{self.input_shape}; {expected}")

    def prepare(self, x: np.ndarray, name: str = "x") -> Prepared:
        """Inputs `x` (N, ...) as the model takes them, by the rule in this module's docstring.

        `x` holds finite numbers; `name` says where they came from, in the note.

        >>> record = Preprocessing("digits", (2,), low=0.0, high=1.0, scale=16)
        >>> record.prepare(np.array([[-3.0, 40.0]]), "rows.npy").note
        'rows.npy holds values in [-3, 40], outside [0, 1], the range of the inputs the model was trained on (digits, scaled as x / 16 from [0, 16]): its predictions for them mean little; scale them as the training data was'
        """
        self.check_features(np.shape(x), name)
        scale, note = self.reading(float(np.min(x)), float(np.max(x)), name)
        if not scale:
            return Prepared(x, False, note)
        floats = np.asarray(x, dtype=np.result_type(x, np.float32))
        scaled = (floats - floats.dtype.type(self.shift)) / floats.dtype.type(self.scale)
        return Prepared(scaled, True, note)

    def reading(self, low: float, high: float, name: str = "x") -> tuple[bool, str | None]:
        """How inputs whose values span [low, high] are taken, by rules 2 to 4 of this module's docstring: whether
        they are scaled as training did, and what to tell the user (None where they are fine as they are).

        >>> Preprocessing("digits", (64,), low=0.0, high=1.0, scale=16).reading(0.0, 16.0, "rows.npy")[0]
        True
        """
        if self._within(low, high, self.low, self.high):
            return False, None
        seen = f"{name} holds values in [{low:.4g}, {high:.4g}]"
        raw_low, raw_high = self.raw_range
        if self.rescales and self._within(low, high, raw_low, raw_high) and self._spread_like_raw(high - low):
            return True, (f"{seen}, within [{raw_low:.4g}, {raw_high:.4g}], the range of {self.source} before "
                          f"training scaled it: scaled them as training did, {self.formula}, into the model's "
                          f"range [{self.low:.4g}, {self.high:.4g}]")
        how = f"scaled as {self.formula} from [{raw_low:.4g}, {raw_high:.4g}]" if self.rescales else "unscaled"
        return False, (f"{seen}, outside [{self.low:.4g}, {self.high:.4g}], the range of the inputs the model was "
                       f"trained on ({self.source}, {how}): its predictions for them mean little; scale them as the "
                       "training data was")

    @property
    def rescales(self) -> bool:
        """Whether training changed the raw values at all."""
        return (self.shift, self.scale) != (0, 1)

    @property
    def formula(self) -> str:
        """The scaling in words: 'x / 16', or '(x - 0.5) / 2'."""
        return f"x / {self.scale:.6g}" if self.shift == 0 else f"(x - {self.shift:.6g}) / {self.scale:.6g}"

    def _spread_like_raw(self, spread: float) -> bool:
        """Whether a spread of values is nearer, as a ratio, to the raw data's width than to the training inputs'
        (True where a width is 0 and cannot tell)."""
        trained = self.high - self.low
        if spread <= 0 or trained <= 0:
            return True
        raw = trained * self.scale
        return abs(math.log(spread / raw)) < abs(math.log(spread / trained))

    @staticmethod
    def _within(low: float, high: float, expected_low: float, expected_high: float) -> bool:
        """Whether [low, high] lies in [expected_low, expected_high], give or take RANGE_SLACK of its width."""
        slack = RANGE_SLACK * max(expected_high - expected_low, abs(expected_low), abs(expected_high))
        return expected_low - slack <= low and high <= expected_high + slack


def _check(field: str, value: Any, ok: bool, expected: str, error: type[Exception] = DescendValueError) -> None:
    """An error naming the field, what it holds (cut to a readable length) and what was expected, unless `ok`."""
    if not ok:
        shown = repr(value)
        raise error(f"Preprocessing: {field} is {shown if len(shown) <= 80 else shown[:80] + '...'}; "
                    f"expected {expected}")
