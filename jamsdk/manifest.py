"""The model folder's ``manifest.json``: the only file the runtime reads to find and check graphs.

``jamsdk export`` writes it next to the ONNX graphs; ``jamsdk build`` adds the ``engines`` section;
the Animator reads it with :func:`load_manifest`. Torch-free (the runtime installs without torch).

Schema, format version 1::

    {
      "format": "jamsdk.model", "format_version": 1, "jamsdk_version": "0.1.0",
      "model": {...ModelConfig.to_dict()...}, "image_size": 256, "num_regions": 10, "opset": 17,
      "pixel": {"layout": "NCHW", "channels": "RGB", "range": [0.0, 1.0], "dtype": "float32"},
      "align_corners": false, "modes": ["standard", "relative", "avd"], "precisions": ["fp32", "fp16"],
      "stages": {
        "<stage>": {"per": "source" | "frame",
                    "files": {"fp32": {"file": "<stage>.onnx", "sha256": "..."},
                              "fp16": {"file": "<stage>.fp16.onnx", "sha256": "..."},
                              "int8": {"file": "<stage>.int8.onnx" | "<stage>.onnx", "sha256": "..."},
                              "int8_cpu": {"file": "<stage>.int8-u8s8.onnx" | ..., "sha256": "..."},
                              "int8_openvino": {"file": "<stage>.int8.onnx" | "<stage>.onnx", "sha256": "..."}},
                    "inputs": [{"name": ..., "shape": [...], "dtype": "float32"}], "outputs": [...]}
      },
      "engines": null | {"tensorrt_version": ..., "gpu_name": ..., "compute_capability": ...,
                         "precision": "fp32" | "fp16" | "int8",
                         "stages": {"<stage>": {"file": "<stage>.engine", "sha256": ...}},
                         "batched": {"<stage>": {"<B>": {"file": "<stage>.b<B>.engine", ...}}},
                         "batched_precision": "fp32" | "fp16" | "int8",  # of the batched engines
                         "batched_b1": {"<stage>": {"file": "<stage>.b1.engine", ...}}},  # see below
      "helpers": {"preprocess" | "postprocess" | "relative": {"file", "sha256", "inputs", "outputs"}},
      "batched": {"sizes": [2, 4, 8],            # optional: graphs for B streams per call
                  "stages": {"<stage>": {"<B>": {"fp32": {"file": "<stage>.b<B>.onnx", ...},
                                                 "int8": {"file": "<stage>.b<B>.int8.onnx", ...}, ...}}}}
    }

Any file entry of an ONNX graph that keeps tensors in other files (ONNX external data) also lists
them, hashed: ``{"file": "<stage>.onnx", "sha256": ..., "external_data": [{"file": ..., "sha256": ...}]}``;
with ``verify_hashes`` the loader checks those hashes and that the graph loads no file the entry does
not list (:mod:`jamsdk.onnx_external` reads the graph's references without ``onnx``).

``helpers`` (optional; with engines under ``engines.helpers``) are the TensorRT path's pixel and
region-algebra graphs, read by :mod:`jamsdk.runtime.helpers`; folders without them still load.

``engines.batched_b1`` (optional) holds batch-1 engines of every stage in ``batched_precision``,
written where that differs from ``precision`` (an INT8 build of a folder whose batched graphs are
FP16): a StreamBatch runs all its engines in one precision, so that a stream's result never depends
on the size of the chunk it landed in.

``batched`` (optional, ``jamsdk export --batch-sizes``) lists the per-frame stages' graphs for B
independent streams per call, exported side by side at fixed B (see :mod:`jamsdk.runtime.batch`);
their tensors are the stage's with the leading dimension B. Every size has a file for each of
``precisions`` but ``int8``; INT8 folders exported since batched INT8 exists
(:mod:`jamsdk.export.int8_batched`) also list ``int8`` and, as at batch 1, ``int8_cpu`` and
``int8_openvino`` (older INT8 folders have none: their batched sizes run FP32 or FP16 only).

Graph inputs and outputs are float32 in every precision (the FP16 graphs cast inside, the INT8
graphs quantize inside). A stage that INT8 export left un-quantized (its quality gate, or a stage
not worth quantizing) lists its FP32 file as its ``int8`` file; ``export.int8`` says which and why.
``int8_cpu`` (optional, INT8 folders) is the graph ONNX Runtime's CPU provider runs for ``int8``:
the fastest that passed the gates on the exporting CPU (:mod:`jamsdk.export.int8_cpu`) — the stage's
``int8`` file, its FP32 file, or ONNX Runtime's own UINT8-activation form; TensorRT and other
providers always use ``int8``. ``int8_openvino`` (optional: INT8 folders exported where OpenVINO was
installed) is the graph OpenVINO runs for ``int8``: the stage's ``int8`` file when it passed the gates
on OpenVINO too and ran faster there, else its FP32 file (``export.int8.openvino`` has the numbers).
Stage names and tensors are those of :func:`jamsdk.stages.stage_table`, and the loader checks that
they still are.
Other keys (e.g. ``export``: how and when the folder was exported) are kept but not interpreted.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping, Sequence

from jamsdk.config import ModelConfig, model_config_from_dict, size_problems
from jamsdk.errors import ConfigError, InputError, ManifestError
from jamsdk.input_files import read_input
from jamsdk.model_files import MANIFEST_NAME, FileRef, check_file, parse_file_ref
from jamsdk.stages import PER_FRAME, PER_SOURCE, TensorSpec, stage_table

FORMAT = "jamsdk.model"
FORMAT_VERSION = 1
PRECISIONS = ("fp32", "fp16", "int8")
#: graph files a stage may list besides its precisions: ONNX Runtime CPU's and OpenVINO's INT8 choices
INT8_VARIANTS = ("int8_cpu", "int8_openvino")
FILE_KEYS = PRECISIONS + INT8_VARIANTS
MODES = ("standard", "relative", "avd")
PIXEL: Mapping[str, Any] = MappingProxyType(
    {"layout": "NCHW", "channels": "RGB", "range": [0.0, 1.0], "dtype": "float32"})
# Stages every model folder has; bg_motion and avd depend on the model.
REQUIRED_STAGES = ("region_predictor", "generator_encoder", "dense_motion", "generator")


@dataclass(frozen=True)
class StageEntry:
    """One stage as the manifest records it (files per precision and the graph's I/O)."""

    name: str
    per: str
    files: Mapping[str, FileRef]
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]


@dataclass(frozen=True)
class Engines:
    """The ``engines`` section ``jamsdk build`` writes: TensorRT plans for one GPU and TRT version."""

    tensorrt_version: str
    gpu_name: str
    compute_capability: str
    precision: str
    stages: Mapping[str, FileRef]
    #: stage → batch size → engine of the batched graph (empty when none were built)
    batched: Mapping[str, Mapping[int, FileRef]] = field(default_factory=dict)
    #: the precision of the batched engines (``precision`` when the manifest does not say)
    batched_precision: str = ""
    #: stage → batch-1 engine in ``batched_precision``, where that differs from ``precision``
    batched_b1: Mapping[str, FileRef] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.batched_precision:
            object.__setattr__(self, "batched_precision", self.precision)


@dataclass(frozen=True)
class Manifest:
    """A validated ``manifest.json`` (see the module docstring for the schema).

    ``data`` is the parsed JSON as read; the other fields are its typed, checked view.
    """

    model_dir: Path
    data: Mapping[str, Any]
    model: ModelConfig
    image_size: int
    num_regions: int
    opset: int
    align_corners: bool
    modes: tuple[str, ...]
    precisions: tuple[str, ...]
    stages: Mapping[str, StageEntry]
    engines: Engines | None
    #: stage → batch size → precision → graph, for the batched graphs (``export --batch-sizes``)
    batched: Mapping[str, Mapping[int, Mapping[str, FileRef]]] = field(default_factory=dict)

    @property
    def batch_sizes(self) -> tuple[int, ...]:
        """Streams per call the folder has graphs for: always 1, plus ``export --batch-sizes``."""
        sizes = {1}
        for per_size in self.batched.values():
            sizes.update(per_size)
        return tuple(sorted(sizes))

    def stage(self, name: str) -> StageEntry:
        """The stage called ``name``; :class:`ManifestError` names the stages there are."""
        try:
            return self.stages[name]
        except KeyError:
            raise ManifestError(
                f"{self.model_dir}: no stage {name!r} in the manifest (it has: {', '.join(self.stages)})"
            ) from None

    def stage_file(self, name: str, precision: str = "fp32", batch: int = 1, prefer: str | None = None) -> Path:
        """Path of stage ``name``'s ONNX graph in ``precision`` (``fp32``, ``fp16``, ``int8``) for ``batch`` streams.

        ``prefer``: for ``int8``, the file key a backend runs where the export wrote one (its
        registry row's ``int8_graph``: ``int8_cpu`` for ONNX Runtime's CPU provider, the graph the
        export chose by speed; ``int8_openvino`` for OpenVINO, when the export judged the INT8 graphs
        on OpenVINO too); else the ``int8`` file. The manifest knows graphs by precision and batch
        size, the backend picks.
        """
        entry = self.stage(name)
        if prefer is not None and prefer not in INT8_VARIANTS:
            raise InputError(f"stage_file: prefer must be None or one of {INT8_VARIANTS}, got {prefer!r}")
        choice = prefer
        if choice and precision == "int8" and batch == 1 and choice in entry.files:
            return self.model_dir / entry.files[choice].file
        if batch != 1:
            files = self.batched.get(name, {}).get(batch, {})
            ref = files.get(choice) if choice and precision == "int8" and choice in files else files.get(precision)
            if ref is None:
                raise ManifestError(f"{self.model_dir}: no {precision} graph of stage {name!r} for batch {batch} "
                                    f"(batch sizes: {list(self.batch_sizes)}); export with --batch-sizes")
            return self.model_dir / ref.file
        if precision not in entry.files:
            how = ("--precision int8 --calibration VIDEO (a driving clip)" if precision == "int8"
                   else f"--precision {precision} (or the default, auto: fp32 and fp16)")
            raise ManifestError(
                f"{self.model_dir}: stage {name!r} has no {precision!r} graph "
                f"(it has: {', '.join(entry.files)}); export with {how}"
            )
        return self.model_dir / entry.files[precision].file

    def file_sha256(self, path: str | os.PathLike[str]) -> str | None:
        """The SHA-256 the manifest records for ``path`` (a graph of this folder), None if it lists none."""
        refs = [ref for entry in self.stages.values() for ref in entry.files.values()]
        refs += [ref for per_size in self.batched.values() for files in per_size.values() for ref in files.values()]
        return next((ref.sha256 for ref in refs if self.model_dir / ref.file == Path(path)), None)

    def engine_file(self, name: str, verify_hash: bool = True, batch: int = 1, batched_set: bool = False) -> Path:
        """Path of stage ``name``'s TensorRT engine (checked to exist and, by default, its hash).

        ``batched_set``: the engine a StreamBatch opens, in ``engines.batched_precision`` at every
        batch size (at batch 1 the ``batched_b1`` engine where that precision differs from ``precision``).
        """
        if self.engines is None:
            from jamsdk.bundled import build_command

            raise ManifestError(f"{self.model_dir}: no engines built yet; build them where they will run: "
                                f"{build_command(self.model_dir)}")
        self.stage(name)
        if batch != 1:
            ref = self.engines.batched.get(name, {}).get(batch)
            if ref is None:
                raise ManifestError(f"{self.model_dir}: no engine of stage {name!r} for batch {batch}; "
                                    "rebuild with `jamsdk build`")
            check_file(self.model_dir, ref, f"engines.batched.{name}.{batch}", verify_hash)
            return self.model_dir / ref.file
        if batched_set and self.engines.batched_precision != self.engines.precision:
            ref = self.engines.batched_b1.get(name)
            if ref is None:
                raise ManifestError(f"{self.model_dir}: no {self.engines.batched_precision} batch-1 engine of stage "
                                    f"{name!r}; rebuild with `jamsdk build`")
            check_file(self.model_dir, ref, f"engines.batched_b1.{name}", verify_hash)
            return self.model_dir / ref.file
        if name not in self.engines.stages:
            raise ManifestError(f"{self.model_dir}: no engine for stage {name!r}; rebuild with `jamsdk build`")
        ref = self.engines.stages[name]
        check_file(self.model_dir, ref, f"engines.stages.{name}", verify_hash)
        return self.model_dir / ref.file

    def tensor_specs(self, name: str) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
        """``(inputs, outputs)`` of stage ``name`` as :class:`~jamsdk.stages.TensorSpec` tuples."""
        entry = self.stage(name)
        return entry.inputs, entry.outputs

    @property
    def has_avd(self) -> bool:
        return "avd" in self.stages

    @property
    def has_bg_motion(self) -> bool:
        return "bg_motion" in self.stages

    def check_mode(self, mode: str) -> str:
        """``mode`` when this model can animate in it; InputError naming the modes it has."""
        if mode not in MODES:
            raise InputError(f"mode: expected one of {MODES}, got {mode!r}")
        if mode == "avd" and not self.has_avd:
            raise InputError(f"mode 'avd' needs a model exported with its AVD network; "
                             f"{self.model_dir} has no avd stage (modes: {list(self.modes)})")
        return mode


def load_manifest(model_dir: str | os.PathLike[str], verify_hashes: bool = True) -> Manifest:
    """Read and validate ``<model_dir>/manifest.json``.

    Checks the format and version, the model config, every stage's tensors against the stage table,
    that every listed ONNX file is a regular file inside the folder (no absolute paths, no ``..``,
    no symlinks leading out) and, with ``verify_hashes``, its SHA-256. Engine files are checked when
    :meth:`Manifest.engine_file` asks for one (a folder copied to another GPU has stale engines but
    still runs on ONNX Runtime).

    Raises:
        ManifestError: anything wrong with the folder or the manifest, with the reason.
    """
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        what = "is not a folder" if model_dir.exists() else "does not exist"
        # The CLI's hint too: the Python API takes the same word for the bundled model.
        raise ManifestError(f"model folder {model_dir} {what}: expected a folder written by jamsdk export "
                            "(or 'demo' for the bundled model)")
    path = model_dir / MANIFEST_NAME
    if not path.exists() and not path.is_symlink():
        raise ManifestError(
            f"{model_dir} has no {MANIFEST_NAME}: not a jamsdk model folder (create one with `jamsdk export`)")
    return parse_manifest(model_dir, read_manifest_json(path), verify_hashes)


def read_manifest_json(path: str | os.PathLike[str]) -> Any:
    """The JSON of a ``manifest.json``, read as :func:`load_manifest` reads it.

    The file itself, never through a symbolic link, a regular file within the manifest cap of
    :mod:`jamsdk.input_files` (4 MiB); strict JSON: no ``NaN`` or ``Infinity``, no number that
    overflows to infinity (``1e999``), no integer of more digits than Python converts (4300).

    Raises:
        ManifestError: any of these, or not UTF-8, or not JSON, in one line.
    """
    path = Path(path)
    try:
        text = read_input(path, "manifest", what="model folder", follow_symlinks=False).decode("utf-8")
    except InputError as exc:
        raise ManifestError(str(exc)) from None
    except UnicodeDecodeError as exc:
        raise ManifestError(f"cannot read {path}: {exc}") from None
    try:
        return json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{path} is not valid JSON ({exc})") from None
    except RecursionError:
        raise ManifestError(f"{path}: nested too deeply to be a jamsdk manifest (not a jamsdk model folder)") from None
    except ValueError as exc:  # NaN/Infinity/1e999 (below), or an integer over Python's 4300 digits
        raise ManifestError(f"{path}: not a jamsdk manifest ({str(exc).splitlines()[0][:160]})") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{text[:40]} is not a finite number")
    return value


def parse_manifest(model_dir: str | os.PathLike[str], data: Any, verify_hashes: bool = True) -> Manifest:
    """Validate manifest ``data`` (already parsed) for the folder ``model_dir``; see :func:`load_manifest`."""
    model_dir = Path(model_dir)
    where = str(model_dir / MANIFEST_NAME)

    def bad(key: str, msg: str) -> ManifestError:
        return ManifestError(f"{where}: {key}: {msg}")

    if not isinstance(data, Mapping):
        raise ManifestError(f"{where}: expected a JSON object, got {type(data).__name__}")
    if data.get("format") != FORMAT:
        raise bad("format", f"expected {FORMAT!r}, got {data.get('format')!r} (not a jamsdk model folder)")
    version = data.get("format_version")
    if not _is_int(version) or version < 1:
        raise bad("format_version", f"expected a whole number ≥ 1, got {version!r}")
    if version > FORMAT_VERSION:
        raise bad("format_version", f"{version} is newer than this jamsdk reads ({FORMAT_VERSION}); upgrade jamsdk")

    try:
        model = model_config_from_dict(_get(data, "model", Mapping, bad))
    except ConfigError as exc:
        raise ManifestError(f"{where}: {exc}") from None
    size = _get(data, "image_size", int, bad)
    if size < 1:
        raise bad("image_size", f"expected a positive size, got {size}")
    num_regions = _get(data, "num_regions", int, bad)
    if num_regions != model.num_regions:
        raise bad("num_regions", f"{num_regions} differs from model.num_regions = {model.num_regions}")
    opset = _get(data, "opset", int, bad)
    align_corners = _get(data, "align_corners", bool, bad)
    if align_corners != model.align_corners:
        raise bad("align_corners", f"{align_corners} differs from model.align_corners = {model.align_corners}")
    pixel = _get(data, "pixel", Mapping, bad)
    if dict(pixel) != dict(PIXEL):
        raise bad("pixel", f"expected {dict(PIXEL)}, got {dict(pixel)}")
    precisions = _str_list(_get(data, "precisions", list, bad), PRECISIONS, "precisions", bad)
    if not precisions:
        raise bad("precisions", f"expected at least one of {', '.join(PRECISIONS)}")
    modes = _str_list(_get(data, "modes", list, bad), MODES, "modes", bad)

    raw_stages = _get(data, "stages", Mapping, bad)
    missing = [s for s in REQUIRED_STAGES if s not in raw_stages]
    if missing:
        raise bad("stages", f"missing stage(s) {', '.join(missing)}")
    if "avd" in modes and "avd" not in raw_stages:
        raise bad("modes", "lists 'avd' but there is no avd stage")
    problems = size_problems(model, size)
    if problems:
        raise bad("image_size", f"{size} does not fit the model: " + "; ".join(problems))
    # The stage table is the contract between export and runtime: tensors must match it exactly.
    table = stage_table(model, size, with_avd="avd" in raw_stages)
    unknown = [s for s in raw_stages if s not in table]
    if unknown:
        raise bad("stages", f"unknown stage {unknown[0]!r} (this model has: {', '.join(table)})")
    missing = [s for s in table if s not in raw_stages]
    if missing:
        raise bad("stages", f"missing stage(s) {', '.join(missing)} that this model needs")

    stages = {}
    for name in table:  # stage-table order: the order a frame runs them
        raw = raw_stages[name]
        key = f"stages.{name}"
        if not isinstance(raw, Mapping):
            raise bad(key, f"expected an object, got {raw!r}")
        per = raw.get("per")
        if per not in (PER_SOURCE, PER_FRAME):
            raise bad(f"{key}.per", f"expected 'source' or 'frame', got {per!r}")
        files_raw = raw.get("files")
        if not isinstance(files_raw, Mapping):
            raise bad(f"{key}.files", f"expected an object, got {files_raw!r}")
        lacking = [p for p in precisions if p not in files_raw]
        if lacking:
            raise bad(f"{key}.files", f"no {lacking[0]!r} file although precisions lists it")
        files = {}
        for prec, ref_raw in files_raw.items():
            if prec not in FILE_KEYS:
                raise bad(f"{key}.files", f"unknown precision {prec!r} (expected one of {FILE_KEYS})")
            ref = parse_file_ref(ref_raw, f"{key}.files.{prec}", bad)
            check_file(model_dir, ref, f"{key}.files.{prec}", verify_hashes)
            files[prec] = ref
        inputs = _specs(raw.get("inputs"), f"{key}.inputs", bad)
        outputs = _specs(raw.get("outputs"), f"{key}.outputs", bad)
        want = table[name]
        if per != want.per or inputs != want.inputs or outputs != want.outputs:
            raise bad(key, f"tensors differ from the stage table of this model at size {size}: expected "
                           f"{_describe(want.inputs)} → {_describe(want.outputs)}, got "
                           f"{_describe(inputs)} → {_describe(outputs)} (re-export with this jamsdk)")
        stages[name] = StageEntry(name, per, MappingProxyType(files), inputs, outputs)

    engines = _engines(data.get("engines"), stages, bad)
    # Batched INT8 graphs came later than the batched FP32/FP16 ones: optional in INT8 folders.
    batched = _batched(data.get("batched"), stages, [p for p in precisions if p != "int8"], model_dir,
                       verify_hashes, bad, int8="int8" in precisions)
    return Manifest(model_dir, data, model, size, num_regions, opset, align_corners, tuple(modes),
                    tuple(precisions), MappingProxyType(stages), engines, batched)


def _batch_key(raw: Any, key: str, bad) -> int:
    if not (isinstance(raw, str) and raw.isdigit() and int(raw) >= 2):
        raise bad(key, f"expected a batch size ≥ 2 (as a string key), got {raw!r}")
    return int(raw)


#: batched files an INT8 folder may list besides its other precisions' (all or none of the first)
BATCHED_INT8_KEYS = ("int8", "int8_cpu", "int8_openvino")


def _batched(raw: Any, stages: Mapping[str, StageEntry], precisions: Sequence[str], model_dir: Path,
             verify_hashes: bool, bad, int8: bool = False) -> Mapping[str, Mapping[int, Mapping[str, FileRef]]]:
    """The optional ``batched`` section: every per-frame stage at every listed size and precision.

    ``precisions`` must all be there; with ``int8`` (an INT8 folder) also, optionally, the INT8 keys.
    """
    if raw is None:
        return MappingProxyType({})
    if not isinstance(raw, Mapping) or not isinstance(raw.get("sizes"), list) or not isinstance(
            raw.get("stages"), Mapping):
        raise bad("batched", f'expected {{"sizes": [...], "stages": {{...}}}}, got {raw!r}')
    sizes = [_batch_key(str(b) if _is_int(b) else b, "batched.sizes", bad) for b in raw["sizes"]]
    want = [name for name, entry in stages.items() if entry.per == PER_FRAME]
    if sorted(raw["stages"]) != sorted(want):
        raise bad("batched.stages", f"expected the per-frame stages {want}, got {sorted(raw['stages'])}")
    out = {}
    for name in want:
        per_size = raw["stages"][name]
        if not isinstance(per_size, Mapping) or sorted(map(str, sizes)) != sorted(per_size):
            raise bad(f"batched.stages.{name}", f"expected sizes {sizes}, got {per_size!r}")
        out[name] = {}
        for b in sizes:
            files = per_size[str(b)]
            optional = set(BATCHED_INT8_KEYS) if int8 else set()
            if not isinstance(files, Mapping) or not set(precisions) <= set(files) \
                    or set(files) - set(precisions) - optional:
                raise bad(f"batched.stages.{name}.{b}", f"expected files for {list(precisions)}"
                          + (f" (and optionally {list(BATCHED_INT8_KEYS)})" if int8 else "") + f", got {files!r}")
            if set(files) & optional and "int8" not in files:
                raise bad(f"batched.stages.{name}.{b}", f"lists {sorted(set(files) & optional)} without 'int8'")
            refs = {}
            for prec in files:
                key = f"batched.stages.{name}.{b}.{prec}"
                refs[prec] = parse_file_ref(files[prec], key, bad)
                check_file(model_dir, refs[prec], key, verify_hashes)
            out[name][b] = MappingProxyType(refs)
    return MappingProxyType(out)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _get(data: Mapping[str, Any], key: str, tp: type, bad) -> Any:
    if key not in data:
        raise bad(key, "missing")
    value = data[key]
    ok = _is_int(value) if tp is int else isinstance(value, tp)
    if not ok:
        names = {int: "a whole number", bool: "true or false", str: "a string", list: "a list", Mapping: "an object"}
        raise bad(key, f"expected {names.get(tp, tp.__name__)}, got {value!r}")
    return value


def _str_list(values: list, allowed: Sequence[str], key: str, bad) -> list[str]:
    for v in values:
        if v not in allowed:
            raise bad(key, f"unknown value {v!r} (expected some of {list(allowed)})")
    if len(set(values)) != len(values):
        raise bad(key, f"repeated values in {values}")
    return list(values)


def _specs(raw: Any, key: str, bad) -> tuple[TensorSpec, ...]:
    if not isinstance(raw, list):
        raise bad(key, f"expected a list, got {raw!r}")
    out = []
    for i, item in enumerate(raw):
        ok = (isinstance(item, Mapping) and isinstance(item.get("name"), str)
              and isinstance(item.get("shape"), list) and all(_is_int(d) and d > 0 for d in item["shape"])
              and isinstance(item.get("dtype"), str))
        if not ok:
            raise bad(f"{key}[{i}]", f'expected {{"name": str, "shape": [positive ints], "dtype": str}}, got {item!r}')
        out.append(TensorSpec(item["name"], tuple(item["shape"]), item["dtype"]))
    return tuple(out)


def _describe(specs: Sequence[TensorSpec]) -> str:
    return "(" + ", ".join(f"{s.name}{list(s.shape)}" for s in specs) + ")"


def _engines(raw: Any, stages: Mapping[str, StageEntry], bad) -> Engines | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise bad("engines", f"expected null or an object, got {raw!r}")
    fields = {}
    for key in ("tensorrt_version", "gpu_name", "compute_capability", "precision"):
        value = raw.get(key)
        if not isinstance(value, str):
            raise bad(f"engines.{key}", f"expected a string, got {value!r}")
        fields[key] = value
    if fields["precision"] not in PRECISIONS:
        raise bad("engines.precision", f"expected one of {PRECISIONS}, got {fields['precision']!r}")
    raw_stages = raw.get("stages")
    if not isinstance(raw_stages, Mapping):
        raise bad("engines.stages", f"expected an object, got {raw_stages!r}")
    refs = {}
    for name, ref in raw_stages.items():
        if name not in stages:
            raise bad("engines.stages", f"engine for unknown stage {name!r}")
        refs[name] = parse_file_ref(ref, f"engines.stages.{name}", bad)
    raw_batched = raw.get("batched") or {}
    if not isinstance(raw_batched, Mapping):
        raise bad("engines.batched", f"expected an object, got {raw_batched!r}")
    batched = {}
    for name, per_size in raw_batched.items():
        if name not in stages or not isinstance(per_size, Mapping):
            raise bad("engines.batched", f"expected stage → {{batch: engine}}, got {name!r}: {per_size!r}")
        batched[name] = MappingProxyType({_batch_key(b, f"engines.batched.{name}", bad):
                                          parse_file_ref(ref, f"engines.batched.{name}.{b}", bad)
                                          for b, ref in per_size.items()})
    batched_precision = raw.get("batched_precision") or fields["precision"]
    if batched_precision not in PRECISIONS:
        raise bad("engines.batched_precision", f"expected one of {PRECISIONS}, got {batched_precision!r}")
    raw_b1 = raw.get("batched_b1") or {}
    if not isinstance(raw_b1, Mapping) or any(name not in stages for name in raw_b1):
        raise bad("engines.batched_b1", f"expected stage → engine, got {raw_b1!r}")
    b1 = {name: parse_file_ref(ref, f"engines.batched_b1.{name}", bad) for name, ref in raw_b1.items()}
    return Engines(stages=MappingProxyType(refs), batched=MappingProxyType(batched),
                   batched_precision=batched_precision, batched_b1=MappingProxyType(b1), **fields)
