"""Memory that evaluations over the same population size reuse (:class:`Workspace`).

On Linux a large array freed at the end of one evaluation is often given back to
the system, and the next evaluation's arrays are then fresh pages that the kernel
must provide and zero. On the benchmark's machine the benchmark's call at 10^6 rows
took 25–26 ms without a workspace and 21–22 ms with one, alone; at 10^7, in the
runner, 0.71 against 0.27 s in a noisy run, 0.344 against 0.244 s in a quieter one
(``docs/performance.md``). A
:class:`Workspace` the caller keeps lends the vector path's largest arrays and
takes them back once nothing refers to them any more, so the next evaluation of
the same size writes into memory it already has.

Pure: it holds memory, reads no clock and does no I/O.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray


def _free_references() -> int | None:
    """How many references a free array has while :meth:`Workspace._is_free` looks at it.

    Its place in the workspace's list and the argument of ``sys.getrefcount``:
    measured here on an array kept the same way, so that an interpreter counting
    differently does not mislead the test. ``None`` where references are not
    counted exactly (not CPython, or CPython without its global lock): nothing is
    ever lent twice there.
    """
    if sys.implementation.name != "cpython":
        return None
    gil = getattr(sys, "_is_gil_enabled", None)
    if gil is not None and not gil():
        return None
    probe = [np.empty(1, dtype=np.uint8)]
    return sys.getrefcount(probe[0])


_FREE: Final = _free_references()


class Workspace:
    """Memory for the vector path's largest arrays, kept from one evaluation to the next.

    Give the same workspace to :func:`~bankkpi.vector.evaluate_arrays` call after
    call (a month-end run over many schemes, a notebook trying one change after
    another): each evaluation takes its largest arrays from the workspace, and the
    workspace takes an array back as soon as nothing refers to it. Those are: its
    copy of each input column given as an integer array, the codes of each grouping
    attribute given as small non-negative integers, a ranking's offsets and sorted
    keys, and the amounts of each compiled rule over more than 131,072 rows (with
    their sum). Columns of text, Decimals or floats, text keys, and rules on the
    array path make their arrays anew, as without a workspace.

    - **Results never change.** An array is lent again only when nothing but the
      workspace refers to it: not the results of an earlier call, not any view or
      slice of them (numpy views refer to the array they view). Results you keep
      keep their memory; the workspace lends others meanwhile. A weak reference
      does not count: a ``weakref`` to a dropped result's array may see a later
      evaluation's numbers.
    - **What it keeps.** The arrays the last evaluation used, and any still in use;
      an array that is free and was not used by the last evaluation is let go at
      the start of the next (so evaluations alternating between two sizes each let
      the other's go). :attr:`nbytes` says how much it holds; :meth:`clear` lets
      go of every free array, and so does dropping the workspace: results do not
      refer to it. Pickled or copied, it is a new, empty one.
    - **Threads.** One workspace may serve several calls at once (it has a lock):
      each array is lent to one of them.
    - **Where it does nothing.** Reuse relies on CPython's reference counts. On
      another interpreter, or a CPython without its global lock, every array is
      new, as without a workspace.

    An array is lent again only to a request for the same length and type, so
    evaluations of one population size profit most. :func:`what_if`,
    :func:`monte_carlo` and :func:`seek_parameter` use one of their own across
    their scenarios.

    >>> import numpy as np
    >>> space = Workspace()
    >>> first = space.empty(4, np.int64)
    >>> address = first.ctypes.data
    >>> del first  # nothing refers to it any more
    >>> space.empty(4, np.int64).ctypes.data == address
    True
    """

    def __init__(self) -> None:
        """An empty workspace: it holds nothing until an evaluation borrows from it."""
        self._arrays: list[NDArray[Any]] = []
        self._used: list[int] = []
        """Per array, the evaluation (:attr:`_round`) that last borrowed it."""
        self._round = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        """How many arrays it holds and their bytes."""
        return f"Workspace({len(self._arrays)} arrays, {self.nbytes} bytes)"

    def __reduce__(self) -> tuple[type[Workspace], tuple[()]]:
        """Pickled, copied and deep-copied as a new, empty workspace: memory is not a value."""
        return (Workspace, ())

    @property
    def nbytes(self) -> int:
        """The bytes of every array it holds, lent or free."""
        with self._lock:
            return sum(array.nbytes for array in self._arrays)

    def clear(self) -> None:
        """Let go of every array nothing else refers to (arrays still in use stay)."""
        with self._lock:
            self._keep(lambda _round: False)

    def begin(self) -> None:
        """Start an evaluation: let go of the free arrays the last one did not use."""
        with self._lock:
            last = self._round
            self._keep(lambda used: used >= last)
            self._round += 1

    def empty(self, length: int, dtype: type[Any] | np.dtype[Any]) -> NDArray[Any]:
        """An array of ``length`` items of ``dtype``, writeable, its contents undefined.

        One the workspace holds and nothing else refers to, if any has this
        length and type; else a new one, which it keeps.
        """
        kind = np.dtype(dtype)
        with self._lock:
            for place in range(len(self._arrays)):
                if self._is_free(place):
                    array = self._arrays[place]
                    if array.shape[0] == length and array.dtype == kind:
                        self._used[place] = self._round
                        array.flags.writeable = True  # results had made it read-only
                        return array
            array = np.empty(length, dtype=kind)
            self._arrays.append(array)
            self._used.append(self._round)
            return array

    def _is_free(self, place: int) -> bool:
        """Whether nothing but this workspace refers to its ``place``-th array."""
        return _FREE is not None and sys.getrefcount(self._arrays[place]) == _FREE

    def _keep(self, wanted: Callable[[int], bool]) -> None:
        """Keep the arrays in use, and the free ones whose last round ``wanted`` accepts."""
        free = [self._is_free(place) for place in range(len(self._arrays))]  # before any
        keep = [not free[place] or wanted(used) for place, used in enumerate(self._used)]
        self._arrays = [array for array, kept in zip(self._arrays, keep, strict=True) if kept]
        self._used = [used for used, kept in zip(self._used, keep, strict=True) if kept]


def lend(space: Workspace | None, length: int, dtype: type[Any] | np.dtype[Any]) -> NDArray[Any]:
    """``space.empty(length, dtype)``, or a new array without a workspace."""
    return np.empty(length, dtype=dtype) if space is None else space.empty(length, dtype)
