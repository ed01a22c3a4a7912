import decimal
from decimal import Decimal

import pytest


def test_float_operation_is_trapped_in_the_test_run():
    with pytest.raises(decimal.FloatOperation):
        _ = Decimal("1.5") < 2.0  # type: ignore[operator]
