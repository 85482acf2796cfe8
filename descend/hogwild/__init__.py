"""HOGWILD!: lock-free parallel SGD (Niu, Recht, Ré, Wright, NIPS 2011) on every core.

Several workers run SGD at once on one shared parameter vector and write it with no locks at all.
When each update touches few coordinates, collisions are rare and the speed-up is close to linear.

- `SGDClassifier`: sparse logistic / hinge / squared-loss classification on scipy CSR data
  (threads in numba kernels that release the GIL, descend.hogwild.kernels).
- `MatrixFactorization`: matrix completion from (row, column, value) triples, the paper's second problem.
- the dense engine (descend.hogwild.dense): any descend model on dense data, in worker processes that
  share the model's flat parameter buffer, as `fit(..., engine="hogwild")`.

The "mutex" and "round-robin" lock modes exist to be compared against: lock-free is the point.
"""

from descend.hogwild.factorization import MatrixFactorization
from descend.hogwild.linear import SGDClassifier, as_csr
from descend.hogwild.locks import LOCKS

__all__ = ["LOCKS", "MatrixFactorization", "SGDClassifier", "as_csr"]
