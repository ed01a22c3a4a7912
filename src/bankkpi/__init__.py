"""bankkpi: exact, explainable bank KPI scoring and incentive calculation.

The public surface is re-exported here; everything in a ``_module`` is private.
Errors live in :mod:`bankkpi.exceptions`.
"""

from bankkpi._bands import Band, BandSet
from bankkpi._indicators import Direction, Indicator, Unit
from bankkpi._measurements import Measurement, MeasurementSet, average, rate, total
from bankkpi._money import (
    FEN,
    JIAO,
    YUAN,
    DecimalLike,
    RoundingMode,
    RoundingPolicy,
    decimal_from_float,
    fen_to_yuan,
    round_fraction,
    to_decimal,
    yuan_to_fen,
)
from bankkpi._periods import Calendar, Period, Phase, prorate
from bankkpi._targets import (
    AtLeast,
    AtMost,
    AttainmentConvention,
    RelativeTarget,
    StagedTarget,
    Target,
    Within,
)

__version__ = "0.1.0.dev0"

__all__ = [
    "FEN",
    "JIAO",
    "YUAN",
    "AtLeast",
    "AtMost",
    "AttainmentConvention",
    "Band",
    "BandSet",
    "BinOp",
    "Calendar",
    "Call",
    "DecimalLike",
    "Direction",
    "Expr",
    "Indicator",
    "Lang",
    "Measurement",
    "MeasurementSet",
    "Num",
    "Period",
    "Phase",
    "RelativeTarget",
    "RoundingMode",
    "RoundingPolicy",
    "StagedTarget",
    "Target",
    "Text",
    "Trace",
    "Unit",
    "Within",
    "__version__",
    "average",
    "decimal_from_float",
    "fen_to_yuan",
    "num",
    "prorate",
    "rate",
    "round_fraction",
    "to_decimal",
    "total",
    "yuan_to_fen",
]
