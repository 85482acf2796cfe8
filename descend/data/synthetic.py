"""Small synthetic data sets for first experiments; each draws only from its own seeded generator."""

from __future__ import annotations

import numpy as np

from descend.checks import check_integer, check_real, check_seed
from descend.data.dataset import Dataset
from descend.errors import DescendTypeError, DescendValueError, ShapeError

CENTER_BOX = 10.0  # make_blobs draws its centers uniformly from [-10, 10]^2, as scikit-learn does


def make_line(
    n: int = 100, slope: float = 2.0, intercept: float = 1.0, noise: float = 0.5, seed: int | None = 0
) -> Dataset:
    """Points on y = slope * x + intercept + noise * e, with x ~ U(-1, 1) and e ~ N(0, 1).

    Shapes: x (n, 1) float32, y (n, 1) float32.

    >>> ds = make_line(n=5, noise=0.0)
    >>> ds.x.shape, ds.y.shape, bool(np.allclose(ds.y, 2 * ds.x + 1))
    ((5, 1), (5, 1), True)
    """
    n = check_integer("n", n, 1)
    slope, intercept = check_real("slope", slope), check_real("intercept", intercept)
    noise = check_real("noise", noise, low=0.0)
    rng = np.random.default_rng(check_seed(seed))
    x = rng.uniform(-1.0, 1.0, size=(n, 1))
    y = slope * x + intercept + noise * rng.standard_normal((n, 1))
    return Dataset(x.astype(np.float32), y.astype(np.float32), name="line")


def make_moons(n: int = 200, noise: float = 0.1, seed: int | None = 0) -> Dataset:
    """Two interleaving half circles in the plane, a classic task a linear model cannot solve.

    Class 0 lies on (cos t, sin t), class 1 on (1 - cos t, 0.5 - sin t), t in [0, pi],
    plus N(0, noise^2) on each coordinate; rows are shuffled. n // 2 points in class 0.
    Shapes: x (n, 2) float32, y (n,) int64 in {0, 1}.

    >>> ds = make_moons(n=10)
    >>> ds.x.shape, ds.y.tolist().count(0)
    ((10, 2), 5)
    """
    n = check_integer("n", n, 1)
    noise = check_real("noise", noise, low=0.0)
    rng = np.random.default_rng(check_seed(seed))
    n_upper = n // 2
    t = np.concatenate([np.linspace(0.0, np.pi, n_upper), np.linspace(0.0, np.pi, n - n_upper)])
    y = (np.arange(n) >= n_upper).astype(np.int64)
    upper = np.stack([np.cos(t), np.sin(t)], axis=1)
    lower = np.stack([1.0 - np.cos(t), 0.5 - np.sin(t)], axis=1)
    x = np.where(y[:, None] == 0, upper, lower) + noise * rng.standard_normal((n, 2))
    order = rng.permutation(n)  # otherwise every class-0 row comes first
    return Dataset(x[order].astype(np.float32), y[order], name="moons")


def make_blobs(n: int = 300, centers: int | np.ndarray = 3, spread: float = 1.0, seed: int | None = 0) -> Dataset:
    """Gaussian clusters in the plane: class k is centers[k] + N(0, spread^2 I).

    `centers` is a count (drawn uniformly from [-10, 10]^2) or an array (k, 2) of them.
    The classes get n // k or n // k + 1 points each; rows are shuffled.
    Shapes: x (n, 2) float32, y (n,) int64 in 0..k-1.

    >>> ds = make_blobs(n=9, centers=3)
    >>> ds.x.shape, np.bincount(ds.y).tolist()
    ((9, 2), [3, 3, 3])
    """
    n = check_integer("n", n, 1)
    spread = check_real("spread", spread, low=0.0)
    rng = np.random.default_rng(check_seed(seed))
    if np.ndim(centers) == 0:
        points = rng.uniform(-CENTER_BOX, CENTER_BOX, size=(check_integer("centers", centers, 1), 2))
    else:
        points = _center_points(centers)
    y = rng.permutation(np.arange(n) % len(points))  # balanced classes in a random order
    x = points[y] + spread * rng.standard_normal((n, 2))
    return Dataset(x.astype(np.float32), y.astype(np.int64), name="blobs")


def make_adding_problem(n: int = 1000, length: int = 100, seed: int | None = 0) -> Dataset:
    """Hochreiter and Schmidhuber's adding problem: a task that needs memory over `length` steps.

    Each row is a sequence of (value, marker) pairs, values uniform in [0, 1);
    the marker is 1 at one step in the first half and one in the second.
    The target is the sum of the two marked values. Always answering 1
    scores a mean squared error of 1/6; doing better means remembering the
    first marked value across up to `length` steps.

    Shapes: x (n, length, 2) float32, y (n, 1) float32.

    >>> ds = make_adding_problem(n=3, length=10)
    >>> ds.x.shape, ds.y.shape, bool(np.allclose(ds.y[:, 0], (ds.x[:, :, 0] * ds.x[:, :, 1]).sum(axis=1)))
    ((3, 10, 2), (3, 1), True)
    """
    n = check_integer("n", n, 1)
    length = check_integer("length", length, 2)
    rng = np.random.default_rng(check_seed(seed))
    values = rng.random((n, length), dtype=np.float32)
    rows = np.arange(n)
    first, second = rng.integers(0, length // 2, n), rng.integers(length // 2, length, n)
    markers = np.zeros((n, length), dtype=np.float32)
    markers[rows, first] = markers[rows, second] = 1.0
    targets = (values[rows, first] + values[rows, second])[:, None]
    return Dataset(np.stack([values, markers], axis=2), targets, name="adding problem")


TRANSACTION_COLUMNS = [
    "amount", "hour", "distance_from_home_km", "merchant_risk", "items", "account_age_days", "amount_per_item",
]
_AMOUNT, _HOUR, _DISTANCE, _RISK, _ITEMS, _AGE, _PER_ITEM = range(len(TRANSACTION_COLUMNS))
# the column each kind of planted anomaly breaks, in the order the kinds are dealt out
_ANOMALY_COLUMNS = (_AMOUNT, _DISTANCE, _RISK, _PER_ITEM)


def make_transactions(
    n: int = 5000, contamination: float = 0.02, seed: int | None = 0
) -> tuple[Dataset, list[str], np.ndarray]:
    """A synthetic table of card transactions, raw and unscaled, with planted anomalies.

    Columns (see the returned names), on very different scales:

    - amount: items · amount_per_item, tens to thousands;
    - hour: of the day, bimodal (day around 12:30, evening around 20:00), never between 0:00 and 6:00;
    - distance_from_home_km: log-normal, a few km, shorter in the evening;
    - merchant_risk: in [0, 1], Beta(2, 20) by day and Beta(4, 20) in the evening;
    - items: 1 + Poisson(1.5);
    - account_age_days: 30 + Gamma(2, 500), hundreds to thousands;
    - amount_per_item: log-normal with median 20, so amount = items · amount_per_item exactly.

    round(contamination · n) rows are anomalies, each breaking one column (the
    kinds dealt out in turn, in a random order): an amount 15-30 times too
    large for its items and price per item; a distance of 800-8000 km; a
    merchant risk of 0.85-0.99 (with a night hour, 1:00-5:00, as a second
    broken column); or an amount_per_item 20-40 times too large for the amount
    and items.

    Returns (Dataset with x (n, 7) float32 and y (n,) int64, 1 = planted
    anomaly; the column names; planted (n,) int64, the index of the main
    broken column of each anomalous row and -1 for normal rows).

    >>> data, columns, planted = make_transactions(n=100, contamination=0.1)
    >>> data.x.shape, int(data.y.sum()), [columns[j] for j in sorted(set(planted[planted >= 0].tolist()))]
    ((100, 7), 10, ['amount', 'distance_from_home_km', 'merchant_risk', 'amount_per_item'])
    """
    n = check_integer("n", n, 1)
    contamination = check_real("contamination", contamination, low=0.0, high=0.5)
    rng = np.random.default_rng(check_seed(seed))
    evening = rng.random(n) < 0.35
    items = 1 + rng.poisson(1.5, n)
    per_item = np.exp(rng.normal(np.log(20.0), 0.8, n))
    hour = np.clip(np.where(evening, rng.normal(20.0, 1.5, n), rng.normal(12.5, 2.5, n)), 6.0, 23.99)
    distance = np.exp(rng.normal(np.log(6.0) - 0.5 * evening, 0.8))
    risk = rng.beta(2.0 + 2.0 * evening, 20.0)
    age = 30.0 + rng.gamma(2.0, 500.0, n)
    x = np.stack([items * per_item, hour, distance, risk, items, age, per_item], axis=1)

    planted = np.full(n, -1, dtype=np.int64)
    rows = rng.choice(n, size=round(contamination * n), replace=False)
    kinds = rng.permutation(np.arange(len(rows)) % len(_ANOMALY_COLUMNS))
    for kind, column in enumerate(_ANOMALY_COLUMNS):
        broken = rows[kinds == kind]
        planted[broken] = column
        if column == _AMOUNT:
            x[broken, _AMOUNT] *= rng.uniform(15.0, 30.0, len(broken))
        elif column == _DISTANCE:
            x[broken, _DISTANCE] = rng.uniform(800.0, 8000.0, len(broken))
        elif column == _RISK:
            x[broken, _RISK] = rng.uniform(0.85, 0.99, len(broken))
            x[broken, _HOUR] = rng.uniform(1.0, 5.0, len(broken))
        else:
            x[broken, _PER_ITEM] *= rng.uniform(20.0, 40.0, len(broken))
    data = Dataset(x.astype(np.float32), (planted >= 0).astype(np.int64), name="transactions")
    return data, list(TRANSACTION_COLUMNS), planted


def _center_points(centers: object) -> np.ndarray:
    try:
        points = np.asarray(centers, dtype=np.float64)
    except (TypeError, ValueError):
        raise DescendTypeError(f"centers must be a count or an array (k, 2) of points; got {centers!r}") from None
    if points.ndim != 2 or points.shape[1] != 2 or len(points) == 0:
        raise ShapeError(f"centers must be a count or an array (k, 2) of points; got shape {points.shape}")
    if not np.isfinite(points).all():
        raise DescendValueError("centers must hold finite coordinates; got NaN or infinity")
    return points
