"""The scheme-A phase workload as bankkpi runs it: the row the peers are compared to.

STAND-IN: ``bankkpi.vector`` does not exist yet, so :func:`run_bankkpi` runs the
plain-numpy reference from ``peers.py``, and every number the runner prints or
writes for this row is labelled ``numpy-reference (bankkpi.vector not yet
available)``. No timing here is a timing of bankkpi.

To measure bankkpi, replace the body of :func:`run_bankkpi` with the
``bankkpi.vector`` call (same inputs, same :class:`~workload.Outcome` of int64
arrays) and set ``LABEL = "bankkpi.vector"`` and ``IS_STAND_IN = False``.
"""

from __future__ import annotations

from typing import Final

from peers import numpy_reference
from workload import I64, Outcome, WorkloadParams

LABEL: Final = "numpy-reference (bankkpi.vector not yet available)"
"""What the runner prints, and writes to its JSON line, for the bankkpi row."""

IS_STAND_IN: Final = True
"""True while :func:`run_bankkpi` is not bankkpi's own code."""


def run_bankkpi(scores: I64, regions: I64, params: WorkloadParams) -> Outcome:
    """STAND-IN for bankkpi.vector: the plain-numpy reference, not bankkpi code."""
    return numpy_reference(scores, regions, params)
