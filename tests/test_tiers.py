"""The slow list in tests/conftest.py names real tests, so the quick tier cannot silently grow back.

Whether the quick tier reaches every jamsdk module is measured with coverage (the command and its
result are in docs/benchmarks.md, "Test tiers"); this file keeps the list honest between those runs.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Loaded from its path: several folders have a conftest.py, so the name alone is ambiguous.
_spec = importlib.util.spec_from_file_location("tests_root_conftest", REPO / "tests" / "conftest.py")
conftest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(conftest)


def test_every_slow_entry_names_tests_that_exist():
    stale = []
    for entry in conftest.SLOW:
        path, _, name = entry.partition("::")
        file = REPO / path
        if not file.is_file():
            stale.append(f"{entry}: no file {path}")
            continue
        if name:
            base = name.split("[")[0]
            pattern = rf"^def {re.escape(base)}\w*\(" if base.endswith("_") else rf"^def {re.escape(base)}\("
            if not re.search(pattern, file.read_text(encoding="utf-8"), re.M):
                stale.append(f"{entry}: no test {base} in {path}")
    assert not stale, "\n".join(stale)


def test_entries_match_a_module_a_test_and_its_parameters_only():
    slow = conftest.slow_entry
    assert slow("tests/scale/test_offline.py::test_job_with_two_actors_then_resume") == "tests/scale/test_offline.py"
    assert slow("tests/model/test_model.py::test_forward_shapes_and_ranges[jam-256]")
    assert slow("tests/model/test_mraa_import.py::test_full_size_conversion_matches_the_mraa_reference[vox256]")
    # the neighbours one step away stay quick: another parameter, a test whose name extends a listed one
    assert slow("tests/model/test_model.py::test_forward_shapes_and_ranges[tiny-jam]") is None
    assert slow("tests/train/test_trainer.py::test_loss_decreases_on_a_fixed_batch_twice") is None
    assert slow("tests/scale/test_offline.pyc::x") is None
