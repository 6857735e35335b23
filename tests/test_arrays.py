"""enliven.arrays: small array helpers shared across the backend."""
from __future__ import annotations

import numpy as np

from enliven.arrays import runs_of


def test_runs_of_finds_every_run_including_those_at_the_ends():
    assert runs_of(np.array([True, True, False, True, False, False, True])) == [(0, 2), (3, 4), (6, 7)]
    assert runs_of(np.zeros(4, bool)) == []
    assert runs_of(np.ones(3, bool)) == [(0, 3)]
    assert runs_of(np.array([], bool)) == []
