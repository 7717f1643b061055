"""The backend registry: every row holds to the code it names, and a new backend is one module plus one row.

The proof of the second is a subprocess that loads the registry with one row more (a backend in
a module outside jamsdk, its "package" a folder beside it) and asks every reader: the CLI's
``--backend``, ``backend="auto"``'s orders, ``jamsdk doctor``, ``_lazy``'s missing-package extra,
``jamsdk info``, the benchmark machine report, and an ``Animator`` that runs the demo model on it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

import jamsdk.backend_registry as registry
from jamsdk.backend_registry import ROWS, auto_orders
from jamsdk.errors import InputError
from jamsdk.manifest import INT8_VARIANTS

REPO = Path(__file__).resolve().parents[1]


def test_rows_hold_to_the_code_they_name():
    from jamsdk.runtime import doctor
    from jamsdk.runtime.backends import BACKENDS, base

    extras = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    assert len({row.name for row in ROWS}) == len(ROWS)
    for row in ROWS:
        cls = BACKENDS[row.name]
        assert (cls.__module__, cls.__name__) == (row.module, row.cls)
        assert issubclass(cls, base.Backend) and cls.kind == row.name
        assert cls.artifact == row.graph and row.graph in ("onnx", "engine")
        assert row.int8_graph is None or row.int8_graph in INT8_VARIANTS
        assert row.extra in extras and row.package in row.packages, row
        assert all(callable(getattr(doctor, name, None)) for name in row.doctor), row.doctor
        assert set(dict(row.auto_rank)) <= set(registry.PRECISIONS)
    for precision in registry.PRECISIONS:
        ranks = [row.rank(precision) for row in ROWS if row.rank(precision) is not None]
        assert len(set(ranks)) == len(ranks), f"two backends share a place in auto's {precision} order"


def test_auto_orders_are_the_measured_ones():
    # OpenVINO before ONNX Runtime for INT8 only (docs/performance.md); TensorRT first everywhere
    assert auto_orders() == {"fp32": ("tensorrt", "onnxruntime", "openvino"),
                             "fp16": ("tensorrt", "onnxruntime", "openvino"),
                             "int8": ("tensorrt", "openvino", "onnxruntime")}


def test_the_registry_imports_nothing_of_jamsdk_and_no_numpy():
    code = ("import sys, jamsdk; before = set(sys.modules); import jamsdk.backend_registry; "
            "print(sorted(m for m in set(sys.modules) - before if m.startswith('jamsdk') or m == 'numpy'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['jamsdk.backend_registry']"


def test_stage_file_takes_only_the_manifest_s_int8_variants(tmp_path):
    from jamsdk.bundled import DEMO_MODEL_DIR
    from jamsdk.manifest import load_manifest

    m = load_manifest(DEMO_MODEL_DIR)
    name = next(iter(m.stages))
    for prefer in INT8_VARIANTS:  # a folder without that variant: the plain graph
        assert m.stage_file(name, "fp32", prefer=prefer) == m.stage_file(name, "fp32")
    with pytest.raises(InputError, match="prefer must be None or one of"):
        m.stage_file(name, "int8", prefer="int8_gpu")  # a row's typo is an error, not the plain int8 graph


# One row more, as a contributor would write it, and a backend module of its own outside jamsdk.
NEW_ROW = '''
    BackendRow(
        name="fakert", module="fakert_backend", cls="FakeRuntimeBackend",
        extra="fakert", packages=("fakert_lib",), package="fakert_lib",
        auto_rank=(("fp32", 5),)),'''
NEW_MODULE = '''
from jamsdk.runtime.backends.onnxruntime import OnnxRuntimeBackend


class FakeRuntimeBackend(OnnxRuntimeBackend):
    """ONNX Runtime under another name: the new backend's own module."""

    kind = "fakert"
'''
PROBE = r'''
import contextlib, io, json, sys, types
from pathlib import Path
import jamsdk
src = Path(jamsdk.__file__).with_name("backend_registry.py").read_text(encoding="utf-8")
anchor = "\n)\n\n#: name → row"
assert src.count(anchor) == 1
module = types.ModuleType("jamsdk.backend_registry")
module.__file__ = "backend_registry.py"
sys.modules[module.__name__] = jamsdk.backend_registry = module
exec(compile(src.replace(anchor, NEW_ROW + anchor), module.__file__, "exec"), module.__dict__)

from jamsdk import _lazy
from jamsdk.cli import build_parser
from jamsdk.commands import _options, info
from jamsdk.runtime import doctor, sysinfo
from jamsdk.runtime.backends import AUTO_ORDERS, BACKENDS
out = {"options": list(_options.BACKENDS), "auto": {k: list(v) for k, v in AUTO_ORDERS.items()},
       "class": BACKENDS["fakert"].__name__}
args = build_parser().parse_args(["animate", "--source", "s.png", "--driving", "d.mp4", "--out", "o.mp4",
                                  "--backend", "fakert"])
out["parsed"] = args.backend
report = doctor.run_checks(backend="fakert")
out["doctor"] = [[r.name, r.status, r.message] for r in report.results if r.name == "fakert_lib"]
out["verdict"] = report.verdict
out["extra"] = _lazy.missing_extra(ModuleNotFoundError("no", name="fakert_lib.core"))
machine = sysinfo.machine_info(probe_gpu=False)
out["machine"] = machine.get("fakert_lib")
out["machine_line"] = [line for line in sysinfo.describe_machine(machine) if "cuda-python" in line]
with contextlib.redirect_stdout(io.StringIO()) as printed:
    info.run(None)
out["info"] = [line for line in printed.getvalue().splitlines() if line.startswith("fakert_lib")]

import numpy as np
from jamsdk import Animator
from jamsdk.bundled import DEMO_MODEL_DIR
rng = np.random.default_rng(0)
source = rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)
frames = [rng.integers(0, 256, (96, 96, 3), dtype=np.uint8) for _ in range(2)]
results = {}
for kind in ("onnxruntime", "fakert"):
    with Animator(DEMO_MODEL_DIR, backend=kind, mode="standard") as anim:
        anim.set_source(source)
        results[kind] = [anim.run(f) for f in frames]
        out.setdefault("kinds", []).append(anim.backend)
out["animator_equal"] = all(np.array_equal(a, b) for a, b in zip(results["onnxruntime"], results["fakert"]))
print(json.dumps(out))
'''


def test_a_new_backend_is_one_module_plus_one_row(tmp_path):
    from jamsdk.commands._options import BACKENDS

    assert "fakert" not in BACKENDS  # the neighbour: without its row, no reader knows it
    (tmp_path / "fakert_backend.py").write_text(NEW_MODULE, encoding="utf-8")
    (tmp_path / "fakert_lib").mkdir()
    (tmp_path / "fakert_lib" / "__init__.py").write_text('__version__ = "0.1"\n', encoding="utf-8")
    code = f"import sys\nsys.path.insert(0, {str(tmp_path)!r})\nNEW_ROW = {NEW_ROW!r}\n" + textwrap.dedent(PROBE)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["options"] == ["auto", "tensorrt", "onnxruntime", "openvino", "fakert"]
    assert out["parsed"] == "fakert" and out["class"] == "FakeRuntimeBackend"
    assert out["auto"] == {"fp32": ["tensorrt", "onnxruntime", "openvino", "fakert"],
                           "fp16": ["tensorrt", "onnxruntime", "openvino"],  # no rank there: never auto
                           "int8": ["tensorrt", "openvino", "onnxruntime"]}
    assert out["doctor"] == [["fakert_lib", "ok", "fakert_lib 0.1"]]  # the generic check, no doctor code
    assert out["verdict"] == "fakert can run models here"
    assert out["extra"] == ["fakert_lib", "fakert"]
    assert out["machine"] == "0.1" and "fakert_lib 0.1, " in out["machine_line"][0]
    assert out["info"] and out["info"][0].split() == ["fakert_lib", "0.1"]
    assert out["kinds"] == ["onnxruntime", "fakert"] and out["animator_equal"] is True


def test_the_generic_doctor_check_of_a_missing_package_names_the_row_s_extra():
    from jamsdk._lazy import install_command
    from jamsdk.runtime import doctor
    from jamsdk.runtime.cudaenv import FAIL, SKIP

    row = registry.BackendRow(name="fakert", module="m", cls="C", extra="fakert", packages=("fakert_absent_lib",),
                              package="fakert_absent_lib")
    for asked, status in (("auto", SKIP), ("fakert", FAIL)):  # missing is a failure only when it is asked for
        facts = doctor._Facts(backend=asked)
        [result] = doctor.check_package(facts, row)
        assert (result.status, result.message) == (status, "fakert_absent_lib: not installed")
        assert result.fix == install_command("fakert") and "fakert" not in facts.imports
