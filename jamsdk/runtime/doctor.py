"""``jamsdk doctor``: can this machine run a model, and if not, what exactly to install or change.

Each check is a small function that returns :class:`Result` records (a status, one sentence, the
fix to run); :func:`run_checks` runs them in order and decides which backend can run, and
:func:`format_report` prints them. Never crashes without a GPU: the GPU is probed through
cuda-python (``cudaGetDeviceCount``) and the driver through ``libcuda`` before anything in
TensorRT is touched, and TensorRT is only imported, never asked to create a runtime or load an
engine (deserialising without a usable CUDA segfaults). Engines are checked against the TensorRT
version and GPU recorded in the model's manifest.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import os
import platform
import sys
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Mapping

from jamsdk._lazy import install_command
from jamsdk.backend_registry import BY_NAME, NAMES, ROWS, BackendRow
from jamsdk.runtime import _query, cudaenv, jetson, sysinfo
from jamsdk.runtime.cudaenv import FAIL, OK, SKIP, WARN

INFO = "info"
#: status → symbol in the report (ASCII fallbacks where the terminal cannot print these)
SYMBOLS = {OK: "✅", FAIL: "❌", WARN: "⚠️", SKIP: "➖", INFO: "ℹ️"}
ASCII = {OK: "[ok]", FAIL: "[FAIL]", WARN: "[warn]", SKIP: "[--]", INFO: "[info]"}
BACKENDS = ("auto", *NAMES)
TRT_JETSON = "(Jetson: sudo apt install python3-libnvinfer, in a venv made with --system-site-packages)"


def _trt_fix() -> str:
    """How to install TensorRT: pip for how jamsdk is installed, apt on a Jetson."""
    return f"{install_command('tensorrt')}   {TRT_JETSON}"


@dataclass(frozen=True)
class Result:
    """One line of the report."""

    section: str
    name: str
    status: str  # ok | fail | warn | skip | info
    message: str
    fix: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class _Facts:
    """What the checks learn and later checks (and the verdict) use."""

    backend: str = "auto"
    root: str = "/"
    imports: dict[str, bool] = field(default_factory=dict)  # backend name → its package imports and works
    binding_ok: bool = False
    gpu: dict[str, Any] = field(default_factory=dict)
    tensorrt_version: str | None = None
    trt_ok: bool = False
    trt_problem: str = ""  # why an importable TensorRT cannot be used (too old)
    jetson: dict[str, Any] | None = None
    manifest: Any = None
    graphs_ok: bool = False
    engines_ok: bool = False


def _optional(facts: _Facts, kind: str) -> str:
    """A missing piece is a failure only when the user asked for the backend that needs it."""
    return FAIL if facts.backend == kind else SKIP


# -- Python and packages ----------------------------------------------------------------------------

def check_python(facts: _Facts) -> list[Result]:
    ver = platform.python_version()
    status = OK if sys.version_info >= (3, 10) else FAIL
    return [Result("python", "Python", status, f"Python {ver} ({platform.machine()}, {platform.system()})",
                   "" if status == OK else "jamsdk needs Python 3.10 or newer")]


def check_numpy_opencv(facts: _Facts) -> list[Result]:
    try:
        import numpy as np
    except Exception as exc:  # a broken or half-upgraded numpy: every backend stands on it
        return [Result("python", "numpy", FAIL, f"numpy does not import: {type(exc).__name__}: {exc}",
                       "pip install --force-reinstall numpy  (in the environment jamsdk runs in)")]

    out = [Result("python", "numpy", OK, f"numpy {np.__version__}")]
    try:
        import cv2
    except Exception as exc:  # an OpenCV built for numpy 1 fails here under numpy 2
        fix = ('pip install "numpy<2"' if "numpy" in str(exc).lower() or "_ARRAY_API" in str(exc)
               else "pip install opencv-python-headless")
        out.append(Result("python", "OpenCV", FAIL, f"cv2 does not import: {exc}", fix))
    else:
        out.append(Result("python", "OpenCV", OK, f"OpenCV {cv2.__version__}"))
    return out


def check_onnxruntime(facts: _Facts) -> list[Result]:
    if importlib.util.find_spec("onnxruntime") is None:
        return [Result("python", "onnxruntime", _optional(facts, "onnxruntime"), "onnxruntime: not installed",
                       install_command("onnxruntime"))]
    try:
        # A failing numpy import inside onnxruntime's extension prints its own traceback before the
        # ImportError: the report's line says it, so keep the traceback off the terminal.
        with contextlib.redirect_stderr(io.StringIO()):
            import onnxruntime as ort

        providers = list(ort.get_available_providers())
    except Exception as exc:
        return [Result("python", "onnxruntime", FAIL, f"onnxruntime does not import: {exc}",
                       install_command("onnxruntime", "--force-reinstall"))]
    facts.imports["onnxruntime"] = True
    return [Result("python", "onnxruntime", OK, f"onnxruntime {ort.__version__} (providers: {', '.join(providers)})",
                   data={"version": ort.__version__, "providers": providers})]


def check_openvino(facts: _Facts) -> list[Result]:
    """openvino's version and what its CPU plugin can do here (INT8 is where it beats ONNX Runtime)."""
    if importlib.util.find_spec("openvino") is None:
        return [Result("python", "openvino", _optional(facts, "openvino"), "openvino: not installed",
                       install_command("openvino"))]
    try:
        from jamsdk.runtime.backends.openvino import core

        ov_core = core()
        caps = [str(c) for c in ov_core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")]
        name = str(ov_core.get_property("CPU", "FULL_DEVICE_NAME"))
    except Exception as exc:
        return [Result("python", "openvino", FAIL, f"openvino does not load its CPU plugin: {exc}",
                       install_command("openvino", "--force-reinstall"))]
    facts.imports["openvino"] = True
    version = sysinfo.package_version("openvino")
    flags = sysinfo.cpu_flags()
    vnni = any(f in flags for f in ("avx512_vnni", "avx_vnni", "amx_int8"))
    note = ("INT8 graphs run on VNNI here" if vnni else
            "no VNNI on this CPU: OpenVINO's INT8 gain was measured on AVX-512 VNNI only")
    short = (version or "?").split("-")[0]  # the build tag after the dash is in the data
    return [Result("python", "openvino", OK, f"openvino {short} (CPU: {name}; {', '.join(caps)}; {note})",
                   data={"version": version, "capabilities": caps, "cpu_flags": flags})]


def check_package(facts: _Facts, row: BackendRow) -> list[Result]:
    """A backend without checks of its own: its package imports, and which version."""
    if importlib.util.find_spec(row.package) is None:
        return [Result("python", row.package, _optional(facts, row.name), f"{row.package}: not installed",
                       install_command(row.extra))]
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # as check_onnxruntime: the line says why
            importlib.import_module(row.package)
    except Exception as exc:
        return [Result("python", row.package, FAIL, f"{row.package} does not import: {exc}",
                       install_command(row.extra, "--force-reinstall"))]
    facts.imports[row.name] = True
    version = sysinfo.package_version(row.package)
    return [Result("python", row.package, OK, f"{row.package} {version or '(version unknown)'}",
                   data={"version": version})]


def backend_checks(facts: _Facts) -> list[tuple[str, Callable[[], list[Result]]]]:
    """Each backend's checks (its row's ``doctor``, else :func:`check_package`): CPU backends first,
    then those that need a GPU, each in registry order."""
    steps: list[tuple[str, Callable[[], list[Result]]]] = []
    for row in sorted(ROWS, key=lambda r: r.needs_gpu):
        if not row.doctor:
            steps.append((f"check_{row.name}", lambda row=row: check_package(facts, row)))
        for name in row.doctor:
            check = globals()[name]
            steps.append((name, lambda check=check: check(facts)))
    return steps


# -- CUDA, GPU, TensorRT ----------------------------------------------------------------------------

def check_cuda(facts: _Facts) -> list[Result]:
    """Driver, cuda-python binding (vs the driver), pycuda and the GPU itself."""
    out = []
    driver, why = cudaenv.driver_cuda_version()
    driver_text = sysinfo.nvidia_driver() if driver else None
    if driver:
        out.append(Result("cuda", "NVIDIA driver", OK, f"NVIDIA driver {driver_text or '(version unknown)'} "
                          f"supports CUDA {cudaenv.cuda_version_text(driver)}",
                          data={"driver": driver_text, "cuda": cudaenv.cuda_version_text(driver)}))
    else:
        out.append(Result("cuda", "NVIDIA driver", _optional(facts, "tensorrt"), f"NVIDIA driver: {why}",
                          "install the NVIDIA driver (on a Jetson it comes with JetPack)"))
    binding = cudaenv.import_binding()
    probe = cudaenv.probe_gpu(binding.rt) if binding.rt is not None else {}
    if binding.rt is None:
        verdict = Result("cuda", "cuda-python", _optional(facts, "tensorrt"),
                         "cuda-python: " + ("not installed" if "No module named 'cuda'" in binding.error
                                            else f"does not import ({binding.error})"), cudaenv.fix_command())
    else:
        status, message, fix = cudaenv.binding_verdict(binding.version, driver, facts.jetson is not None,
                                                       probe.get("code", 0))
        if status == SKIP and not driver:
            status = INFO  # the driver line above is the problem, not the binding
        facts.binding_ok = status in (OK, WARN)
        verdict = Result("cuda", "cuda-python", status, f"{message} [{binding.module}]", fix,
                         data={"version": binding.version, "module": binding.module})
    out += [verdict, _pycuda(binding.rt is not None)]
    if probe.get("name"):
        facts.gpu = probe
        out.append(Result("cuda", "GPU", OK, f"GPU: {probe['name']}, compute capability {probe['compute_capability']}, "
                          f"{probe['memory_mb']} MiB" + (" (shared with the CPU)" if probe["integrated"] else ""),
                          data=probe))
    else:
        reason = ("no NVIDIA driver" if not driver
                  else probe.get("error") or ("no CUDA binding to ask" if binding.rt is None else "no device"))
        # The usual cause of a GPU that does not answer is the binding/driver mismatch above.
        fix = verdict.fix if driver and verdict.status == FAIL else ""
        out.append(Result("cuda", "GPU", _optional(facts, "tensorrt"), f"GPU: none usable ({reason})", fix,
                          data=probe))
    return out


def _pycuda(have_cuda_python: bool) -> Result:
    version = sysinfo.package_version("pycuda")
    if version is None:
        note = "not needed: cuda-python is the binding" if have_cuda_python else "neither is cuda-python"
        return Result("cuda", "pycuda", SKIP if have_cuda_python else INFO, f"pycuda not installed ({note})")
    # Not imported: pycuda's own context handling is what jamsdk avoids; it is a fallback only.
    role = "installed, unused (cuda-python is preferred)" if have_cuda_python else "the fallback binding in use"
    return Result("cuda", "pycuda", INFO, f"pycuda {version}: {role}")


def check_tensorrt(facts: _Facts) -> list[Result]:
    from jamsdk.runtime.trt_support import has_strong_typing, support_problem

    version = sysinfo.package_version("tensorrt")
    if version is None and importlib.util.find_spec("tensorrt") is None:
        return [Result("tensorrt", "TensorRT", _optional(facts, "tensorrt"), "tensorrt: not installed",
                       _trt_fix())]
    if not facts.gpu:
        # Importing is harmless, but without a usable GPU nothing more is learnt and TensorRT's
        # CUDA initialisation is the segfault path this command exists to avoid.
        facts.tensorrt_version = version
        too_old = support_problem(version) if version else ""
        return [Result("tensorrt", "TensorRT", _optional(facts, "tensorrt"),
                       f"tensorrt {version or '(version unknown)'} installed; not imported (no usable GPU)"
                       + (f"; {too_old}" if too_old else ""), _trt_fix() if too_old else "")]
    try:
        trt = importlib.import_module("tensorrt")
    except Exception as exc:
        return [Result("tensorrt", "TensorRT", FAIL, f"tensorrt does not import: {exc}",
                       _trt_fix())]
    facts.tensorrt_version = str(getattr(trt, "__version__", version))
    too_old = support_problem(facts.tensorrt_version)
    if too_old:  # it imports, but the first Animator would fail: say so here, once
        facts.trt_problem = too_old
        fix = "flash JetPack 6.1 or later (TensorRT 10.3)" if facts.jetson else _trt_fix()
        return [Result("tensorrt", "TensorRT", FAIL, too_old, fix, data={"version": facts.tensorrt_version})]
    facts.trt_ok = facts.binding_ok
    # Attribute reads only (no TensorRT object is created): without strong typing (8.6) jamsdk builds
    # FP16/FP32 weakly typed and no INT8 (jamsdk.runtime.onnx2engine).
    strong = has_strong_typing(trt)
    note = "" if strong else "; it builds fp16/fp32 engines weakly typed and no int8 (strongly typed networks need 10)"
    return [Result("tensorrt", "TensorRT", OK if facts.binding_ok else WARN,
                   f"tensorrt {facts.tensorrt_version} imports" + note
                   + ("" if facts.binding_ok else " (but the CUDA binding above is not usable)"),
                   data={"version": facts.tensorrt_version, "strongly_typed": strong})]


# -- Jetson -----------------------------------------------------------------------------------------

def check_jetson(facts: _Facts, run: _query.Runner = _query.run_command) -> list[Result]:
    info = facts.jetson
    if info is None:
        return [Result("jetson", "Jetson", SKIP, "Jetson: no")]
    mode = info.get("nvpmodel") or {}
    clocks = info.get("jetson_clocks") or {}
    power = mode.get("name") or "unknown"
    if mode.get("id") is not None:
        power += f" (id {mode['id']})"
    out = [Result("jetson", "Jetson", OK, f"Jetson: {info.get('model') or 'unknown module'}, "
                  f"L4T {info.get('l4t') or '?'}, JetPack {info.get('jetpack') or '?'}", data=dict(info))]
    advice = jetson.jetson_advice(info)
    nvp = [a for a in advice if a.startswith("sudo nvpmodel")]
    out.append(Result("jetson", "power mode", WARN if nvp else OK, f"power mode {power}", nvp[0] if nvp else ""))
    on = clocks.get("on")
    clk = [a for a in advice if a.startswith("sudo jetson_clocks")]
    out.append(Result("jetson", "clocks", OK if on else WARN,
                      f"jetson_clocks {({True: 'on', False: 'off', None: 'unknown'})[on]}"
                      + (f" (from {clocks['source']})" if clocks.get("source") else ""),
                      clk[0].split("#")[0].strip() if clk else ""))
    return out


# -- the model folder -------------------------------------------------------------------------------

def check_model(facts: _Facts, model_dir: str | os.PathLike[str]) -> list[Result]:
    from jamsdk.errors import JamError
    from jamsdk.manifest import load_manifest

    try:
        manifest = load_manifest(model_dir)  # checks every graph's file and hash
    except JamError as exc:
        return [Result("model", "manifest", FAIL, f"manifest: {exc}", "export the model again with jamsdk export")]
    facts.manifest, facts.graphs_ok = manifest, True
    out = [Result("model", "manifest", OK, f"manifest: {manifest.model.name} {manifest.image_size}², stages: "
                  f"{', '.join(manifest.stages)}"),
           Result("model", "graphs", OK, f"ONNX graphs present and intact ({', '.join(manifest.precisions)})")]
    from jamsdk.bundled import build_command

    build = build_command(model_dir)
    out += _helpers(manifest, build)
    engines = manifest.engines
    if engines is None:
        why_not = _can_run(facts, "tensorrt", with_model=False)
        if why_not:  # build needs what TensorRT needs: advise it only where it can run
            out.append(Result("model", "engines", _optional(facts, "tensorrt"),
                              f"engines: none built yet; TensorRT cannot run on this machine ({why_not}), so they "
                              "cannot be built here either: ONNX Runtime runs this folder's graphs",
                              "" if facts.backend != "tensorrt" else
                              "build them on the machine with the GPU that will run them (jamsdk doctor there first)"))
        else:
            out.append(Result("model", "engines", _optional(facts, "tensorrt"), "engines: none built yet",
                              f"build them on this machine: {build}"))
        return out
    try:
        for name in manifest.stages:
            manifest.engine_file(name)  # present, hash matches
    except JamError as exc:
        out.append(Result("model", "engines", FAIL, f"engines: {exc}", f"rebuild: {build}"))
        return out
    built = (f"TensorRT {engines.tensorrt_version}, {engines.gpu_name} (compute capability "
             f"{engines.compute_capability}), {engines.precision}")
    if not (facts.tensorrt_version and facts.gpu):
        out.append(Result("model", "engines", _optional(facts, "tensorrt"),
                          f"engines: for {built}; cannot check them here (no usable GPU/TensorRT)"))
        return out
    from jamsdk.runtime import _cuda
    from jamsdk.runtime.backends.tensorrt import check_engine_compat

    gpu = _cuda.GpuInfo(facts.gpu["name"], facts.gpu["compute_capability"], facts.gpu.get("device", 0))
    try:
        check_engine_compat(manifest.data.get("engines"), facts.tensorrt_version, gpu)
    except JamError as exc:
        out.append(Result("model", "engines", FAIL, f"engines: {exc}", f"rebuild: {build}"))
        return out
    facts.engines_ok = True
    out.append(Result("model", "engines", OK, f"engines built for this TensorRT and GPU ({built})"))
    if manifest.data["engines"].get("tf32", True) is not False:  # builds before TF32 was cleared and recorded
        out.append(Result("model", "TF32", WARN, "engines: built without TF32 recorded as off (the FP32 islands may "
                          "run in TF32 on Ampere and newer)", f"rebuild: {build}"))
    return out


def _helpers(manifest: Any, build: str) -> list[Result]:
    """The device-resident path's helper graphs (pre/post-processing, relative transfer) and their engines."""
    from jamsdk.errors import JamError
    from jamsdk.runtime.helpers import helper_engine, load_helpers

    try:
        helpers = load_helpers(manifest)
    except JamError as exc:
        return [Result("model", "helpers", FAIL, f"helper graphs: {exc}", "export the model again")]
    if not helpers:
        return [Result("model", "helpers", WARN, "helper graphs: none (exported before them): TensorRT streams "
                       "through the slower host path", "export again, or add them in place: python -c \"from "
                       "jamsdk.runtime.helpers import add_helper_graphs; add_helper_graphs('DIR')\"")]
    out = [Result("model", "helpers", OK, f"helper graphs: {', '.join(helpers)}")]
    if manifest.engines is not None:
        try:
            missing = [name for name in helpers if helper_engine(manifest, name) is None]
        except JamError as exc:
            return out + [Result("model", "helper engines", FAIL, f"helper engines: {exc}", f"rebuild: {build}")]
        if missing:
            out.append(Result("model", "helper engines", WARN, f"helper engines missing ({', '.join(missing)}): "
                              "TensorRT streams through the slower host path", f"rebuild: {build}"))
    return out


# -- everything -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Report:
    """All results, the backend that can run (None when none can) and why."""

    results: tuple[Result, ...]
    backend: str
    chosen: str | None
    verdict: str
    model_dir: str | None = None

    @property
    def ok(self) -> bool:
        return self.chosen is not None

    def to_dict(self) -> dict[str, Any]:
        from jamsdk._version import __version__

        return {"jamsdk_version": __version__, "backend": self.backend, "chosen": self.chosen, "ok": self.ok,
                "verdict": self.verdict, "model_dir": self.model_dir,
                "results": [{**asdict(r), "data": dict(r.data)} for r in self.results]}


def _can_run(facts: _Facts, kind: str, with_model: bool) -> str:
    """Why ``kind`` cannot run ("" when it can)."""
    if not BY_NAME[kind].needs_gpu:
        if not facts.imports.get(kind):
            return f"{kind} does not import"
        return "" if facts.graphs_ok or not with_model else "the model folder is not usable"
    if not facts.gpu:
        return "no usable GPU"
    if not facts.binding_ok:
        return "the CUDA binding is not usable"
    if not facts.trt_ok:
        return facts.trt_problem or "tensorrt does not import"
    return "" if facts.engines_ok or not with_model else "no engines built for this TensorRT and GPU"


def run_checks(model_dir: str | os.PathLike[str] | None = None, backend: str = "auto", root: str = "/",
               run: _query.Runner = _query.run_command) -> Report:
    """Run every check; ``backend`` is the one the user will run (``auto``: the first that can)."""
    from jamsdk.errors import InputError

    if backend not in BACKENDS:
        raise InputError(f"backend: expected one of {', '.join(BACKENDS)}, got {backend!r}")
    facts = _Facts(backend=backend, root=root)
    facts.jetson = jetson.jetson_info(root, run) if jetson.is_jetson(root) else None
    checks: list[Callable[[_Facts], list[Result]]] = [check_python, check_numpy_opencv]
    steps: list[tuple[str, Callable[[], list[Result]]]] = [(c.__name__, lambda c=c: c(facts)) for c in checks]
    steps += backend_checks(facts)
    steps.append(("check_jetson", lambda: check_jetson(facts, run)))
    if model_dir is not None:
        steps.append(("check_model", lambda: check_model(facts, model_dir)))
    results: list[Result] = []
    for name, step in steps:
        try:
            results += step()
        except Exception as exc:  # a diagnostic must report, never die: one broken check is one ❌ line
            results.append(Result(name.removeprefix("check_"), name, FAIL,
                                  f"{name} raised {type(exc).__name__}: {exc}",
                                  "a jamsdk bug: report it with this output (jamsdk doctor --json OUT)"))
    with_model = model_dir is not None
    what = "this model" if with_model else "models"
    try:
        from jamsdk.runtime.backends import auto_order  # every backend stands on numpy
    except ImportError as exc:  # the numpy line above says why and how to fix it
        return Report(tuple(results), backend, None, f"nothing can run {what} here: {type(exc).__name__}: {exc}",
                      None if model_dir is None else str(model_dir))

    kinds = auto_order("fp32") if backend == "auto" else (backend,)
    why = {kind: _can_run(facts, kind, with_model) for kind in kinds}
    chosen = next((kind for kind in kinds if not why[kind]), None)
    if chosen:
        verdict = f"{chosen} can run {what} here"
        if backend == "auto" and chosen != "tensorrt":
            verdict += f" (TensorRT: {why['tensorrt']})"
    else:
        verdict = "; ".join(f"{kind} cannot run {what} here: {why[kind]}" for kind in kinds)
    return Report(tuple(results), backend, chosen, verdict, None if model_dir is None else str(model_dir))


_TITLES = {"python": "Python and packages", "cuda": "CUDA and GPU", "tensorrt": "TensorRT", "jetson": "Jetson",
           "model": "Model folder"}


def format_report(report: Report, ascii_only: bool = False) -> str:
    """The report in words: one line per check with its symbol, the fix indented below it."""
    symbols = ASCII if ascii_only else SYMBOLS
    lines, section = [], None
    for r in report.results:
        if r.section != section:
            section = r.section
            title = _TITLES.get(section, section)
            lines.append(f"{title}: {report.model_dir}" if section == "model" else title)
        lines.append(f"  {symbols[r.status]} {r.message}")
        if r.fix:
            lines.append(f"      fix: {r.fix}")
    lines.append(f"{symbols[OK] if report.ok else symbols[FAIL]} {report.verdict}")
    return "\n".join(lines)


__all__ = ["BACKENDS", "Report", "Result", "backend_checks", "check_cuda", "check_jetson", "check_model",
           "check_numpy_opencv", "check_onnxruntime", "check_openvino", "check_package", "check_python",
           "check_tensorrt", "format_report", "run_checks"]
