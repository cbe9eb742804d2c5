# Shared fixtures for the Python tests. The module under test is whatever `import softmax`
# finds: CTest puts <build>/python first on PYTHONPATH; after `pip install .` it is the
# installed one.
import os

import numpy as np
import pytest

SHARED_DATA = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data")


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def f32_ulp_rtol(ulps):
    return ulps * np.finfo(np.float32).eps
