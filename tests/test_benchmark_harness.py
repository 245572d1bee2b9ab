"""The benchmark harness times what it says: every system of a per-call workload is a
``common.Call`` of the function itself (no wrapper frame timed with it)."""
import os
import sys

import numpy as np
import pytest

import graphc as gc

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "benchmarks"))
bench_fusion = pytest.importorskip("bench_fusion")
common = pytest.importorskip("common")


@pytest.mark.parametrize("expression", bench_fusion.EXPRESSIONS)
def test_fusion_systems_are_calls_of_the_functions_themselves(expression):
    fns, _ = bench_fusion.systems(gc, expression, 1000, "float64", with_peers=False)
    assert set(fns) == {"graphc", "graphc unfused", "numpy", "numpy out="}
    want = bench_fusion.numpy_naive(expression)(bench_fusion.inputs(1000, "float64"))
    for name, call in fns.items():
        assert isinstance(call, common.Call), name
        assert getattr(call.fn, "__name__", "") != "<lambda>" and call.then is None, name
        assert call.timer().timeit(1) >= 0.0  # the statement runs
        assert np.asarray(call()).tobytes() == want.tobytes(), name
    assert type(fns["graphc"].fn) is type(gc.function([], gc.Graph().constant(1.0)))
