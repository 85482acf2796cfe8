"""What NumPy's BLAS runs on, printed at the top of every benchmark so its figures can be read rightly.

OpenBLAS picks its kernel from the processor unless OPENBLAS_CORETYPE forces one; some machines set it
(with OPENBLAS_L2_SIZE) for older OpenBLAS builds, and a forced older kernel slows NumPy's products
(Haswell instead of SkylakeX here: about 1.5x on the recurrent products). To measure NumPy as it runs
for a user, start the benchmark with both unset:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/char_rnn.py
"""

from __future__ import annotations

import os


def describe_blas() -> str:
    """One line: NumPy's BLAS library, its kernel and threads, and a warning when the kernel is forced."""
    from threadpoolctl import threadpool_info

    pools = [pool for pool in threadpool_info() if pool["user_api"] == "blas"]
    found = ", ".join(f"{pool['internal_api']} {pool.get('architecture', '?')} kernel, {pool['num_threads']} threads"
                      for pool in pools) or "no BLAS found"
    forced = {name: os.environ[name] for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if name in os.environ}
    warning = f" (forced by {forced}: unset both to measure NumPy's own choice)" if forced else ""
    return f"NumPy BLAS: {found}{warning}"
