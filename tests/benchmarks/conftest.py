"""The benchmark scripts set torch's process-wide thread count: each test gives it back."""

import sys

import pytest


@pytest.fixture(autouse=True)
def _restore_threads():
    torch = sys.modules.get("torch")  # the scripts' tests import it first; the others need not pull it in
    before = torch.get_num_threads() if torch is not None else None
    yield
    if before is not None:
        torch.set_num_threads(before)
