"""ONNX graphs → TensorRT plan files (``<stage>.engine``), and the manifest's ``engines`` section.

Precision paths (DEPLOY_FACTS §0, §4):

* ``fp16`` + ``strong`` (the default): the exporter's mixed-precision graph ``<stage>.fp16.onnx``
  (FP16 body, FP32 islands for region statistics, 2×2 solves and coordinates) is built as a
  *strongly typed* network, so TensorRT keeps exactly the graph's types. Works on TensorRT 10.x
  (JetPack 6 ships 10.3) and is the only mode TensorRT 11 has (there the flag is deprecated and
  ignored, so it is not passed).
* ``fp16`` + ``weak`` (fallback for TensorRT < 10.12, where ``BuilderFlag.FP16`` still exists):
  the FP32 graph with FP16 enabled and FP32 constraints on everything except convolutions,
  pooling, activations, normalisation and concatenation; the region predictor and AVD stages stay
  FP32 throughout (their outputs feed determinants that underflow in FP16).
* ``fp32``: the FP32 graph, strongly typed (for parity checks against ONNX Runtime).
* ``int8``: the explicitly quantized graph ``<stage>.int8.onnx`` (Q/DQ, symmetric INT8, see
  :mod:`jamsdk.export.int8`), strongly typed: TensorRT runs INT8 exactly where the graph has Q/DQ
  and FP32 elsewhere, with no precision flags (implicit INT8 calibration is deprecated, and
  TensorRT 11 has no INT8 flag). Strongly typed only. Stages the export left un-quantized build
  from their FP32 graph (the manifest's ``int8`` file). Batched graphs (``export --batch-sizes``)
  of an INT8 export have their own Q/DQ form (:mod:`jamsdk.export.int8_batched`): the batched
  engines are built from those, so every batch size is INT8; folders exported before that have
  none, and their batched engines are built from the batched FP16 graphs where exported, else the
  FP32 ones. ``engines.batched_precision`` records which. Where that differs from the stages'
  precision, every stage also gets a batch-1 engine in it (``engines.batched_b1``): a StreamBatch
  runs one precision at every batch size. Written to the TensorRT 10 API and
  checked against stand-ins only: no TensorRT could run where it was written.

TensorRT 8.6 (the oldest jamsdk runs on; it has no strongly typed networks) builds ``fp16`` and
``fp32`` weakly typed (``--typing auto`` picks that there) with explicit-batch networks, and refuses
``int8``: build INT8 engines on TensorRT 10 or newer. Older TensorRT is refused
(:func:`jamsdk.runtime.backends.tensorrt.support_problem`).

TF32 is cleared for every build (``engines.tf32: false`` in the manifest): TensorRT enables it by
default (``BuilderFlag.kTF32``, "Enabled by default", ``NvInfer.h`` 10.3 and 11.0) and strong
typing does not turn it off, so the FP32 islands (region statistics, 2×2 solves, coordinates)
would otherwise run convolutions/matmuls with 10-bit-mantissa inputs on Ampere and later.

Engines are plain TensorRT plans (``trtexec --loadEngine`` opens them); what they were built for
(TensorRT version, GPU, compute capability, precision) is recorded only in ``manifest.json``.
The timing cache is loaded before and saved after every stage, so rebuilds and interrupted builds
reuse the measured tactics.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from jamsdk._atomic import write_bytes
from jamsdk._lazy import require
from jamsdk.errors import EngineError, InputError
from jamsdk.manifest import load_manifest
from jamsdk.manifest_write import write_manifest
from jamsdk.model_files import MANIFEST_NAME, file_ref
from jamsdk.runtime import _cuda
from jamsdk.runtime.trt_support import has_strong_typing, support_problem, version_tuple
from jamsdk.runtime.helpers import load_helpers
from jamsdk.user_cache import cache_root

PRECISIONS = ("fp16", "fp32", "int8")
TYPINGS = ("auto", "strong", "weak")
#: stages that stay FP32 in the weakly typed FP16 build
FP32_STAGES = ("region_predictor", "avd")
#: layer types that may run in FP16 in the weakly typed build (everything else is held in FP32)
WEAK_FP16_LAYER_TYPES = ("CONVOLUTION", "DECONVOLUTION", "POOLING", "ACTIVATION", "NORMALIZATION", "SCALE",
                         "CONCATENATION")

Log = Callable[[str], None]


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def resolve_typing(typing: str, precision: str, tensorrt_version: str, has_fp16_flag: bool,
                   strongly_typed: bool = True) -> str:
    """``strong`` or ``weak`` for a build (see the module docstring); InputError if impossible.

    ``strongly_typed``: this TensorRT has ``NetworkDefinitionCreationFlag.STRONGLY_TYPED`` (9.x and
    10.x; NvInfer.h v8.6.1:9933-9937 has none). Without it ``auto`` builds FP16 and FP32 weakly typed,
    and INT8 cannot be built: the Q/DQ graphs are built strongly typed only.
    """
    if typing not in TYPINGS:
        raise InputError(f"typing: expected one of {TYPINGS}, got {typing!r}")
    if precision not in PRECISIONS:
        raise InputError(f"precision: expected one of {PRECISIONS}, got {precision!r}")
    if precision == "int8" and (typing == "weak" or not strongly_typed):
        if not strongly_typed:
            raise InputError(f"INT8 engines are built strongly typed from the Q/DQ graphs, and TensorRT "
                             f"{tensorrt_version} has no strongly typed networks (TensorRT 10 has); build fp16 or "
                             "fp32 engines here, or INT8 ones on TensorRT 10 or newer")
        raise InputError("INT8 engines are built strongly typed from the Q/DQ graphs only (implicit INT8 "
                         "calibration is deprecated in TensorRT 10 and gone in 11); drop --typing weak")
    if typing == "auto":
        return "strong" if strongly_typed else "weak"
    if typing == "strong" and not strongly_typed:
        raise InputError(f"TensorRT {tensorrt_version} has no strongly typed networks (TensorRT 10 has); build with "
                         "--typing weak (or auto, which picks it here)")
    always_strong = not has_fp16_flag or version_tuple(tensorrt_version) >= (11,)
    if typing == "weak" and always_strong:
        if precision == "fp16":
            raise InputError(f"TensorRT {tensorrt_version} has no weakly typed FP16 (BuilderFlag.FP16 was removed "
                             "in 11.0); use the default strongly typed build")
        return "strong"  # TensorRT 11 networks are always strongly typed: record what is built
    return typing


def _check_version(trt: Any) -> None:
    problem = support_problem(getattr(trt, "__version__", ""))
    if problem:
        raise EngineError(problem)


def default_timing_cache(tensorrt_version: str, gpu: _cuda.GpuInfo) -> Path:
    """``<cache root>/tensorrt/timing-<trt>-sm<cc>.cache``: one cache per TensorRT version and GPU.

    The root is :func:`jamsdk.user_cache.cache_root` (``$JAMSDK_CACHE_DIR``, else the XDG cache).
    """
    cc = gpu.compute_capability.replace(".", "")
    return cache_root() / "tensorrt" / f"timing-{tensorrt_version}-sm{cc}.cache"


class _Progress:
    """A TensorRT progress monitor that prints the builder's top phases (needs TRT ≥ 10)."""

    def __init__(self, trt: Any, log: Log, prefix: str):
        base = trt.IProgressMonitor

        class Monitor(base):  # type: ignore[misc, valid-type]
            def __init__(self) -> None:
                base.__init__(self)
                self.depth: dict[str, int] = {}
                self.started: dict[str, float] = {}

            def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
                depth = 0 if parent_phase is None else self.depth.get(parent_phase, 0) + 1
                self.depth[phase_name] = depth
                self.started[phase_name] = time.perf_counter()
                if depth <= 1:
                    log(f"{prefix}{'  ' * depth}{phase_name} ({num_steps} step{'s' if num_steps != 1 else ''})")

            def step_complete(self, phase_name: str, step: int) -> bool:
                return True  # never cancel

            def phase_finish(self, phase_name: str) -> None:
                depth = self.depth.pop(phase_name, 0)
                took = time.perf_counter() - self.started.pop(phase_name, time.perf_counter())
                if depth == 0:
                    log(f"{prefix}{phase_name} done in {took:.1f} s")

        self.monitor = Monitor()


@dataclass(frozen=True)
class EngineReport:
    """What :func:`onnx2engine` built."""

    stage: str
    engine: Path
    onnx: Path
    typing: str
    precision: str
    seconds: float
    size_bytes: int


def _parse(trt: Any, builder: Any, logger: Any, onnx_path: Path, strongly_typed: bool) -> tuple[Any, Any]:
    flags = 0
    version = version_tuple(trt.__version__)
    if version < (10,):
        # Before 10 a network is implicit-batch unless asked, and the ONNX parser refuses those
        # (onnx-tensorrt release/8.6-GA ModelImporter.cpp:547); 10 deprecates the flag (always explicit).
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    # TensorRT 11 is always strongly typed and marks the flag deprecated: pass it only before 11.
    if strongly_typed and version < (11,):
        flag = getattr(getattr(trt, "NetworkDefinitionCreationFlag", None), "STRONGLY_TYPED", None)
        if flag is None:  # a silent weak build would ignore the graph's FP16/FP32 types
            raise EngineError(f"TensorRT {trt.__version__} has no strongly typed networks "
                              "(NetworkDefinitionCreationFlag.STRONGLY_TYPED; TensorRT 10 has them); build with "
                              "typing 'weak'")
        flags |= 1 << int(flag)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EngineError(f"TensorRT cannot parse {onnx_path}: {errors or 'unknown error'}")
    return network, parser


def _constrain_weak(trt: Any, network: Any, all_fp32: bool) -> int:
    """FP32 constraints for the weakly typed FP16 build; returns how many layers were held in FP32."""
    fp16_types = {getattr(trt.LayerType, n) for n in WEAK_FP16_LAYER_TYPES if hasattr(trt.LayerType, n)}
    floats = (trt.float32, trt.float16)
    held = 0
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        if not all_fp32 and layer.type in fp16_types:
            continue
        outputs = [layer.get_output(j) for j in range(layer.num_outputs)]
        if not outputs or any(t.dtype not in floats for t in outputs):
            continue  # shape/index/bool tensors keep their types
        layer.precision = trt.float32
        for j in range(layer.num_outputs):
            layer.set_output_type(j, trt.float32)
        held += 1
    return held


def onnx2engine(onnx_path: str | os.PathLike[str], engine_path: str | os.PathLike[str], *,
                stage: str = "", precision: str = "fp16", typing: str = "strong",
                workspace_mb: int | None = None, timing_cache: str | os.PathLike[str] | None = None,
                log: Log = _stderr) -> EngineReport:
    """Build one TensorRT plan from one ONNX graph and write it atomically.

    Args:
        onnx_path: the graph (``<stage>.fp16.onnx`` for strongly typed FP16, ``<stage>.int8.onnx`` for
            INT8, else ``<stage>.onnx``).
        engine_path: where the plan goes (written only when the build succeeded).
        stage: the stage name (for messages, and for the weak build's FP32 stages).
        precision: ``fp16``, ``fp32`` or ``int8`` (no builder flag: the graph's Q/DQ carry it).
        typing: ``strong`` or ``weak`` (resolve ``auto`` with :func:`resolve_typing` first).
        workspace_mb: cap on the builder's scratch memory (None: TensorRT's default, all memory).
        timing_cache: file to load tactics from and save them to (None: no cache).
        log: where progress lines go.

    Raises:
        EngineError: no GPU, the graph does not parse, or the build fails.
    """
    onnx_path, engine_path = Path(onnx_path), Path(engine_path)
    if typing not in ("strong", "weak"):  # "auto" or a typo would silently build weakly typed
        raise InputError(f"typing: expected 'strong' or 'weak' (resolve 'auto' with resolve_typing), got {typing!r}")
    if precision not in PRECISIONS:
        raise InputError(f"precision: expected one of {PRECISIONS}, got {precision!r}")
    _cuda.require_gpu("building TensorRT engines")  # before TensorRT is touched (no GPU → segfaults)
    trt = require("tensorrt")
    _check_version(trt)
    if not onnx_path.is_file():
        raise EngineError(f"{onnx_path} does not exist")
    name = stage or onnx_path.stem
    from jamsdk.runtime.backends.tensorrt import trt_logger

    logger = trt_logger(trt)  # the process-wide one: TensorRT keeps using it after this function returns
    builder = trt.Builder(logger)
    network, parser = _parse(trt, builder, logger, onnx_path, typing == "strong")
    config = builder.create_builder_config()
    if workspace_mb:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_mb) << 20)
    if hasattr(trt.BuilderFlag, "TF32"):
        config.clear_flag(trt.BuilderFlag.TF32)  # on by default; would round the FP32 islands' inputs
    if typing == "weak" and precision == "fp16":
        all_fp32 = name in FP32_STAGES
        if not all_fp32:
            config.set_flag(trt.BuilderFlag.FP16)
        config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
        held = _constrain_weak(trt, network, all_fp32)
        log(f"  {name}: weakly typed FP16, {held}/{network.num_layers} layers held in FP32")
    monitor = None
    if hasattr(trt, "IProgressMonitor") and hasattr(config, "progress_monitor"):
        monitor = _Progress(trt, log, f"  {name}: ").monitor
        config.progress_monitor = monitor
    cache_path = Path(timing_cache) if timing_cache else None
    if cache_path is not None:
        blob = cache_path.read_bytes() if cache_path.is_file() else b""
        cache = config.create_timing_cache(blob)
        if cache is None:  # a corrupt or foreign blob: TensorRT returns no cache rather than raising
            log(f"  {name}: timing cache {cache_path} cannot be read; starting a new one")
            cache = config.create_timing_cache(b"")
        if cache is None or not config.set_timing_cache(cache, False):  # a cache from another GPU/TRT is not used
            log(f"  {name}: timing cache {cache_path} does not fit this GPU/TensorRT; starting a new one")
            config.set_timing_cache(config.create_timing_cache(b""), False)
    start = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    seconds = time.perf_counter() - start
    if serialized is None:
        raise EngineError(f"TensorRT could not build {name} from {onnx_path} (see the TensorRT log above)")
    data = bytes(memoryview(serialized))
    write_bytes(engine_path, data)
    if cache_path is not None:
        cache_blob = bytes(memoryview(config.get_timing_cache().serialize()))
        write_bytes(cache_path, cache_blob)
    del parser, network, monitor
    return EngineReport(name, engine_path, onnx_path, typing, precision, seconds, len(data))


def _mirror(model_dir: Path, out_dir: Path, files: Sequence[str]) -> None:
    """Make ``out_dir`` a complete model folder: hard links (or copies) of the graphs."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in files:
        src, dst = model_dir / name, out_dir / name
        if dst.exists():
            if dst.stat().st_size == src.stat().st_size and os.path.samefile(src, dst):
                continue
            dst.unlink()
        try:
            os.link(src, dst)
        except OSError:  # another filesystem, or no hard links there
            shutil.copy2(src, dst)


def _batched_jobs(manifest: Any, names: Sequence[str], precision: str, graph_precision: str, typing: str,
                  log: Log) -> tuple[str, list[tuple[str, int, Path, str, str]]]:
    """``(precision, [(stage, B, graph, precision, typing), …])`` of the batched engines to build.

    An INT8 build makes its batched engines from the batched Q/DQ graphs when every batched stage
    and size has one; an INT8 folder exported before batched INT8 has none, and then the batched
    FP16 graphs are built where they exist, else the FP32 ones, and the log says so. Every graph is
    resolved before anything is built: a missing one is an error up front, never after the batch-1
    engines were written without a manifest.
    """
    batch_precision, batch_typing = precision, typing
    batched_int8 = all("int8" in files for n in names for files in manifest.batched.get(n, {}).values())
    if graph_precision == "int8" and not batched_int8:
        sizes = {b for n in names for b in manifest.batched.get(n, {})}
        have = {p for n in names for b in manifest.batched.get(n, {}) for p in manifest.batched[n][b]}
        batch_precision = "fp16" if "fp16" in have else "fp32"
        batch_typing = "strong"
        if sizes:
            log(f"batched engines (b{', b'.join(map(str, sorted(sizes)))}): {batch_precision}, strongly typed "
                "(the batched export has no INT8 graphs)")
        graph = batch_precision
    else:
        graph = graph_precision
    jobs = [(n, b, manifest.stage_file(n, graph, b), batch_precision, batch_typing)
            for n in names for b in sorted(manifest.batched.get(n, {}))]
    return batch_precision, jobs


def _batch1_jobs(manifest: Any, names: Sequence[str], precision: str, batched_precision: str,
                 batched_jobs: Sequence[Any]) -> list[tuple[str, Path, str]]:
    """``[(stage, graph, precision), …]``: batch-1 engines in the batched precision, where it differs.

    A StreamBatch runs every engine it opens in one precision (``engines.batched_precision``), so a
    folder whose batched engines differ from its batch-1 engines (INT8 stages, FP16 batched graphs)
    gets a batch-1 engine of every stage in the batched precision too, from the same graphs the
    batched engines are built from, strongly typed.
    """
    if not batched_jobs or batched_precision == precision:
        return []
    return [(n, manifest.stage_file(n, batched_precision), batched_precision) for n in names]


def build_engines(model_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str] | None = None, *,
                  precision: str = "fp16", typing: str = "auto", workspace_mb: int | None = None,
                  timing_cache: str | os.PathLike[str] | None = None, stages: Sequence[str] | None = None,
                  log: Log = _stderr) -> Path:
    """Build every stage's engine for this machine's GPU and record them in the manifest.

    Args:
        model_dir: an exported model folder.
        out_dir: where engines go (default: ``model_dir``). Another folder becomes a complete model
            folder: the graphs are hard-linked (or copied) there with the updated manifest, and
            ``model_dir`` is left untouched.
        precision: ``fp16`` (default), ``fp32`` or ``int8`` (the Q/DQ graphs, strongly typed).
        typing: ``auto`` (strongly typed), ``strong`` or ``weak`` (see the module docstring).
        workspace_mb: builder scratch-memory cap in MiB.
        timing_cache: timing-cache file (default: one per TensorRT version and GPU under
            ``~/.cache/jamsdk/tensorrt``).
        stages: build only these stages (default: all).
        log: where progress lines go.

    Returns:
        The path of the updated ``manifest.json``.
    """
    model_dir = Path(model_dir)
    out = Path(out_dir) if out_dir is not None else model_dir
    manifest = load_manifest(model_dir)
    if out_dir is not None and not (out.exists() and out.resolve() == model_dir.resolve()):
        from jamsdk._folders import check_replaceable
        from jamsdk.manifest_write import model_folder_problem

        check_replaceable(out, model_folder_problem, "--out")  # files of another folder are never overwritten
    gpu = _cuda.require_gpu("building TensorRT engines")
    trt = require("tensorrt")
    _check_version(trt)
    version = str(trt.__version__)
    typing = resolve_typing(typing, precision, version, hasattr(trt.BuilderFlag, "FP16"), has_strong_typing(trt))
    helper_typing = "strong" if has_strong_typing(trt) else "weak"  # FP32 either way: no precision flag is set
    graph_precision = "fp16" if (precision == "fp16" and typing == "strong") else "fp32"
    if precision == "int8":
        graph_precision = "int8"  # the Q/DQ graphs; strongly typed (resolve_typing refuses weak)
    if graph_precision not in manifest.precisions:
        how = "--precision int8 --calibration VIDEO" if graph_precision == "int8" else \
            f"--precision {graph_precision} (or the default, auto: fp32 and fp16)"
        raise InputError(f"{model_dir} has no {graph_precision} graphs (it has {list(manifest.precisions)}); "
                         f"export with {how}, or build with --precision fp32")
    names = list(stages) if stages else list(manifest.stages)
    unknown = [n for n in names if n not in manifest.stages]
    if unknown:
        raise InputError(f"unknown stage(s) {unknown} (the model has {list(manifest.stages)})")
    cache = Path(timing_cache) if timing_cache else default_timing_cache(version, gpu)
    same_dir = out.resolve() == model_dir.resolve()
    helpers = load_helpers(manifest) if not stages else {}
    if not same_dir:
        graphs = sorted({f.file for entry in manifest.stages.values() for ref in entry.files.values()
                         for f in (ref, *ref.external)}
                        | {f.file for sizes in manifest.batched.values() for files in sizes.values()
                           for ref in files.values() for f in (ref, *ref.external)}
                        | {path.name for _stage, path in helpers.values()})
        _mirror(model_dir, out, graphs)
    batched_precision, batched_jobs = _batched_jobs(manifest, names, precision, graph_precision, typing, log)
    log(f"building {len(names)} engine(s) for {gpu.name} (sm {gpu.compute_capability}), TensorRT {version}, "
        f"{precision} {typing}ly typed; timing cache {cache}")
    refs = {}
    old = manifest.engines
    reuse = same_dir and old is not None and \
        (old.tensorrt_version, old.gpu_name, old.compute_capability, old.precision) == \
        (version, gpu.name, gpu.compute_capability, precision)
    if reuse:
        refs = {k: {"file": v.file, "sha256": v.sha256} for k, v in old.stages.items()}  # keep the others
    total = time.perf_counter()
    for i, name in enumerate(names, 1):
        onnx = manifest.stage_file(name, graph_precision)
        file = f"{name}.engine"
        log(f"[{i}/{len(names)}] {name}: {onnx.name} → {file}")
        report = onnx2engine(onnx, out / file, stage=name, precision=precision, typing=typing,
                             workspace_mb=workspace_mb, timing_cache=cache, log=log)
        log(f"[{i}/{len(names)}] {name}: built in {report.seconds:.1f} s ({report.size_bytes / 1e6:.1f} MB)")
        refs[name] = file_ref(out, file)
    # Batched graphs (export --batch-sizes) have static shapes: one plain engine per size, no
    # optimization profile (jamsdk.export.batched says why).
    batched_refs: dict[str, dict[str, dict[str, str]]] = {}
    if reuse and old is not None:  # a partial rebuild for the same GPU keeps the other stages' sizes too
        batched_refs = {k: {str(b): {"file": v.file, "sha256": v.sha256} for b, v in sizes.items()}
                        for k, sizes in old.batched.items() if k not in names}
    for name, b, onnx_b, prec_b, typing_b in batched_jobs:
        file = f"{name}.b{b}.engine"
        report = onnx2engine(onnx_b, out / file, stage=name, precision=prec_b, typing=typing_b,
                             workspace_mb=workspace_mb, timing_cache=cache, log=log)
        log(f"  {name} b{b} ({prec_b}): built in {report.seconds:.1f} s ({report.size_bytes / 1e6:.1f} MB)")
        batched_refs.setdefault(name, {})[str(b)] = file_ref(out, file)
    b1_refs: dict[str, dict[str, str]] = {}
    if reuse and old is not None and old.batched_precision == batched_precision:  # a partial rebuild keeps the others
        b1_refs = {k: {"file": v.file, "sha256": v.sha256} for k, v in old.batched_b1.items() if k not in names}
    for name, onnx_b1, prec_b1 in _batch1_jobs(manifest, names, precision, batched_precision, batched_jobs):
        file = f"{name}.b1.engine"
        report = onnx2engine(onnx_b1, out / file, stage=name, precision=prec_b1, typing="strong",
                             workspace_mb=workspace_mb, timing_cache=cache, log=log)
        log(f"  {name} b1 ({prec_b1}, for StreamBatch): built in {report.seconds:.1f} s")
        b1_refs[name] = file_ref(out, file)
    helper_refs = {}
    for name, (_stage, onnx) in helpers.items():
        # FP32 whatever the stages' precision (exact pixel maths and 2×2 solves): strongly typed, or on
        # TensorRT without strong typing weakly typed with no precision flag, which is FP32 throughout.
        file = f"{name}.engine"
        onnx2engine(onnx, out / file, stage=name, precision="fp32", typing=helper_typing, workspace_mb=workspace_mb,
                    timing_cache=cache, log=log)
        helper_refs[name] = file_ref(out, file)
    if not helper_refs and reuse:  # a partial rebuild keeps the helper engines built for this GPU/TensorRT
        helper_refs = dict((manifest.data.get("engines") or {}).get("helpers") or {})
    data = dict(manifest.data)
    old_data_engines = dict(manifest.data.get("engines") or {})
    data["engines"] = {"tensorrt_version": version, "gpu_name": gpu.name,
                       "compute_capability": gpu.compute_capability, "precision": precision,
                       "typing": typing, "tf32": False, "stages": refs}
    if helper_refs:
        data["engines"]["helpers"] = helper_refs
    if batched_refs:
        data["engines"]["batched"] = batched_refs
        data["engines"]["batched_precision"] = batched_precision if batched_jobs else \
            (old_data_engines.get("batched_precision") or precision)
        if b1_refs and data["engines"]["batched_precision"] != precision:
            data["engines"]["batched_b1"] = b1_refs
    path = write_manifest(out, data)
    log(f"done in {time.perf_counter() - total:.1f} s; engines recorded in {out / MANIFEST_NAME}")
    return path
