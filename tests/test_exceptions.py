import inspect

import pytest

from bankkpi import exceptions
from bankkpi.exceptions import (
    BankKPIError,
    InvalidValueError,
    MissingDataError,
    ValidationErrorGroup,
)

STDLIB = (ValueError, TypeError, LookupError, ZeroDivisionError, OverflowError, ExceptionGroup)


def concrete_errors():
    return [
        obj
        for _, obj in inspect.getmembers(exceptions, inspect.isclass)
        if issubclass(obj, BankKPIError) and obj is not BankKPIError
    ]


@pytest.mark.parametrize("cls", concrete_errors(), ids=lambda c: c.__name__)
def test_every_concrete_error_also_subclasses_a_stdlib_type(cls):
    assert issubclass(cls, STDLIB)


def test_public_names_are_exported():
    assert set(exceptions.__all__) == {c.__name__ for c in concrete_errors()} | {"BankKPIError"}


def test_message_names_subject_field_rule_value():
    error = InvalidValueError("score", "must be <= 100", 104, subject="outlet 9")
    assert str(error) == "outlet 9: 'score' must be <= 100: 104"


def test_group_lists_every_problem_and_survives_except_star():
    group = ValidationErrorGroup(
        "bad input", [InvalidValueError("a", "must be > 0", -1), MissingDataError("rank", "o1")]
    )
    text = str(group)
    assert "2 problems" in text
    assert "'a' must be > 0: -1" in text
    assert "no rank for 'o1'" in text
    caught = []
    try:
        raise group
    except* InvalidValueError as split:
        caught.append(split)
    except* MissingDataError as rest:
        caught.append(rest)
    assert all(isinstance(part, ValidationErrorGroup) for part in caught)
    assert [len(part.exceptions) for part in caught] == [1, 1]
