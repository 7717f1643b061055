"""Helper graphs: the per-pixel and region-algebra work that keeps a frame on the device.

Three tiny ONNX graphs written beside the stages by ``jamsdk export`` (manifest key ``helpers``)
and built into engines by ``jamsdk build`` (``engines.helpers``):

* ``preprocess``: ``frame`` ``(1, S, S, 3)`` uint8 HWC + ``channel_order`` ``(3,)`` int32 →
  ``image`` ``(1, 3, S, S)`` float32 in [0, 1] (``x · (1/255)``, channels reordered, NCHW), the
  same arithmetic as :func:`jamsdk.runtime.frames.to_model_input` after its crop/resize.
* ``postprocess``: ``prediction`` + ``channel_order`` → ``frame`` uint8 HWC,
  ``floor(clip(x, 0, 1)·255 + 0.5)`` like :func:`~jamsdk.runtime.frames.to_image`. The floor
  makes the value integral before the cast, so TensorRT's float→uint8 cast (truncation,
  ``NvInferRuntimeBase.h`` kUINT8) and ONNX Runtime's agree.
* ``relative``: the relative mode's region transfer (``shift = μ_s + (μ_d − μ_d0)·scale``,
  ``affine = A_d · A_d0⁻¹ · A_s``), the same closed forms and determinant guard as the numpy twin
  :func:`jamsdk.runtime.regions.relative_params`; ``covar`` passes through and is bound directly.

Only the TensorRT backend runs them (ONNX Runtime keeps the host path). Folders exported before
they existed have no ``helpers`` key and run on TensorRT through the slower host path.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from jamsdk.errors import ManifestError
from jamsdk.model_files import check_file, file_ref, parse_file_ref
from jamsdk.stages import PER_FRAME, Stage, TensorSpec

if TYPE_CHECKING:
    from jamsdk.manifest import Manifest

HELPERS = ("preprocess", "postprocess", "relative")
OPSET = 17


def helper_table(size: int, k: int) -> dict[str, Stage]:
    """The helper graphs of a model at resolution ``size`` with ``k`` regions."""
    image = TensorSpec("image", (1, 3, size, size))
    order = TensorSpec("channel_order", (3,), "int32")
    frame = TensorSpec("frame", (1, size, size, 3), "uint8")
    rel_in = tuple(TensorSpec(f"{who}_{p}", shp) for who in ("source", "driving", "initial")
                   for p, shp in (("shift", (1, k, 2)), ("affine", (1, k, 2, 2))))
    return {
        "preprocess": Stage("preprocess", PER_FRAME, (frame, order), (image,), "uint8 HWC → float NCHW in [0, 1]"),
        "postprocess": Stage("postprocess", PER_FRAME, (TensorSpec("prediction", image.shape), order), (frame,),
                             "float NCHW → uint8 HWC, rounded"),
        "relative": Stage("relative", PER_FRAME, rel_in + (TensorSpec("scale", (1,)),),
                          (TensorSpec("shift", (1, k, 2)), TensorSpec("affine", (1, k, 2, 2))),
                          "relative-mode region transfer"),
    }


def _spec_dicts(specs: tuple[TensorSpec, ...]) -> list[dict[str, Any]]:
    return [{"name": s.name, "shape": list(s.shape), "dtype": s.dtype} for s in specs]


def load_helpers(manifest: "Manifest", verify_hashes: bool = True) -> dict[str, tuple[Stage, Path]]:
    """``{name: (stage, onnx path)}`` of the folder's helper graphs; ``{}`` for folders exported before them.

    Raises:
        ManifestError: a ``helpers`` entry that is damaged, points outside the folder, or whose
            tensors differ from :func:`helper_table`.
    """
    raw = manifest.data.get("helpers")
    if raw is None:
        return {}
    where = manifest.model_dir / "manifest.json"

    def bad(key: str, msg: str) -> ManifestError:
        return ManifestError(f"{where}: {key}: {msg}")

    if not isinstance(raw, Mapping):
        raise bad("helpers", f"expected an object, got {raw!r}")
    table = helper_table(manifest.image_size, manifest.num_regions)
    out = {}
    for name, entry in raw.items():
        if name not in table:
            raise bad("helpers", f"unknown helper {name!r} (expected some of {list(table)})")
        ref = parse_file_ref(entry, f"helpers.{name}", bad)
        check_file(manifest.model_dir, ref, f"helpers.{name}", verify_hashes)
        stage = table[name]
        if entry.get("inputs") != _spec_dicts(stage.inputs) or entry.get("outputs") != _spec_dicts(stage.outputs):
            raise bad(f"helpers.{name}", "tensors differ from this jamsdk's helper graphs (re-export)")
        out[name] = (stage, manifest.model_dir / ref.file)
    return out


def helper_engine(manifest: "Manifest", name: str, verify_hash: bool = True) -> Path | None:
    """The engine of helper ``name`` recorded by ``jamsdk build``, or None when there is none."""
    engines = manifest.data.get("engines") or {}
    raw = (engines.get("helpers") or {}).get(name) if isinstance(engines, Mapping) else None
    if raw is None:
        return None
    where = manifest.model_dir / "manifest.json"
    ref = parse_file_ref(raw, f"engines.helpers.{name}", lambda k, m: ManifestError(f"{where}: {k}: {m}"))
    check_file(manifest.model_dir, ref, f"engines.helpers.{name}", verify_hash)
    return manifest.model_dir / ref.file


# -- writing (export time; needs onnx) --------------------------------------------------------------

def helper_graphs(size: int, k: int) -> dict[str, Any]:
    """``{name: onnx.ModelProto}`` of the helper graphs (FP32 arithmetic, opset 17)."""
    from jamsdk._lazy import require

    onnx = require("onnx")
    h, tp = onnx.helper, onnx.TensorProto
    types = {"float32": tp.FLOAT, "uint8": tp.UINT8, "int32": tp.INT32}
    table = helper_table(size, k)

    def const(name: str, value: Any, dtype: int = tp.FLOAT) -> Any:
        import numpy as np

        arr = np.asarray(value, dtype={tp.FLOAT: np.float32, tp.INT64: np.int64}[dtype])
        return h.make_node("Constant", [], [name], value=h.make_tensor(name, dtype, arr.shape, arr.ravel().tolist()))

    def model(name: str, nodes: list[Any]) -> Any:
        st = table[name]
        graph = h.make_graph(nodes, name,
                             [h.make_tensor_value_info(s.name, types[s.dtype], s.shape) for s in st.inputs],
                             [h.make_tensor_value_info(s.name, types[s.dtype], s.shape) for s in st.outputs])
        proto = h.make_model(graph, opset_imports=[h.make_opsetid("", OPSET)], producer_name="jamsdk")
        proto.ir_version = 8
        onnx.checker.check_model(proto)
        return proto

    pre = [
        h.make_node("Cast", ["frame"], ["f"], to=tp.FLOAT),
        const("inv255", 1.0 / 255.0),
        h.make_node("Mul", ["f", "inv255"], ["scaled"]),
        h.make_node("Gather", ["scaled", "channel_order"], ["ordered"], axis=3),
        h.make_node("Transpose", ["ordered"], ["image"], perm=[0, 3, 1, 2]),
    ]
    post = [
        h.make_node("Transpose", ["prediction"], ["hwc"], perm=[0, 2, 3, 1]),
        h.make_node("Gather", ["hwc", "channel_order"], ["ordered"], axis=3),
        const("zero", 0.0), const("one", 1.0), const("c255", 255.0), const("half", 0.5),
        h.make_node("Clip", ["ordered", "zero", "one"], ["clipped"]),
        h.make_node("Mul", ["clipped", "c255"], ["scaled"]),
        h.make_node("Add", ["scaled", "half"], ["rounded"]),
        h.make_node("Floor", ["rounded"], ["whole"]),
        h.make_node("Cast", ["whole"], ["frame"], to=tp.UINT8),
    ]
    return {"preprocess": model("preprocess", pre), "postprocess": model("postprocess", post),
            "relative": model("relative", _relative_nodes(h, tp, const, k))}


def _relative_nodes(h: Any, tp: Any, const: Any, k: int) -> list[Any]:
    """Nodes of the relative transfer; 2×2 matrices as four ``(1, K, 1)`` entries (a, b, c, d)."""
    nodes = [const("flat_shape", [1, k, 4], tp.INT64), const("mat_shape", [1, k, 2, 2], tp.INT64),
             const("eps", 1e-30), const("neg_eps", -1e-30), const("zero", 0.0), const("one", 1.0)]

    def split(src: str) -> list[str]:
        names = [f"{src}_{e}" for e in "abcd"]
        nodes.append(h.make_node("Reshape", [src, "flat_shape"], [f"{src}_flat"]))
        nodes.append(h.make_node("Split", [f"{src}_flat"], names, axis=2))  # opset 17: equal parts
        return names

    def op(kind: str, a: str, b: str, out: str) -> str:
        nodes.append(h.make_node(kind, [a, b], [out]))
        return out

    def matmul(x: list[str], y: list[str], out: str) -> list[str]:
        # written out like regions.matmul: same products, same sums, same order
        (x00, x01, x10, x11), (y00, y01, y10, y11) = x, y
        r = []
        for i, (p, q, s, t) in enumerate(((x00, y00, x01, y10), (x00, y01, x01, y11),
                                          (x10, y00, x11, y10), (x10, y01, x11, y11))):
            r.append(op("Add", op("Mul", p, q, f"{out}_m{i}a"), op("Mul", s, t, f"{out}_m{i}b"), f"{out}_{i}"))
        return r

    a, b, c, d = split("initial_affine")
    det = op("Sub", op("Mul", a, d, "ad"), op("Mul", b, c, "bc"), "det")
    nodes.append(h.make_node("GreaterOrEqual", [det, "zero"], ["det_pos"]))
    op("Max", det, "eps", "det_hi")
    op("Min", det, "neg_eps", "det_lo")
    nodes.append(h.make_node("Where", ["det_pos", "det_hi", "det_lo"], ["det_safe"]))
    inv_det = op("Div", "one", "det_safe", "inv_det")
    nodes += [h.make_node("Neg", [b], ["neg_b"]), h.make_node("Neg", [c], ["neg_c"])]
    inv = [op("Mul", d, inv_det, "i00"), op("Mul", "neg_b", inv_det, "i01"),
           op("Mul", "neg_c", inv_det, "i10"), op("Mul", a, inv_det, "i11")]
    first = matmul(split("driving_affine"), inv, "da")
    second = matmul(first, split("source_affine"), "das")
    nodes.append(h.make_node("Concat", second, ["affine_flat"], axis=2))
    nodes.append(h.make_node("Reshape", ["affine_flat", "mat_shape"], ["affine"]))
    op("Sub", "driving_shift", "initial_shift", "moved")
    op("Mul", "moved", "scale", "moved_scaled")
    op("Add", "source_shift", "moved_scaled", "shift")
    return nodes


def write_helper_graphs(out_dir: str | os.PathLike[str], size: int, k: int) -> dict[str, Any]:
    """Write ``<helper>.onnx`` into ``out_dir``; returns the manifest's ``helpers`` entry."""
    from jamsdk._atomic import write_bytes

    out_dir = Path(out_dir)
    table = helper_table(size, k)
    entry = {}
    for name, proto in helper_graphs(size, k).items():
        file = f"{name}.onnx"
        write_bytes(out_dir / file, proto.SerializeToString())
        stage = table[name]
        entry[name] = {**file_ref(out_dir, file), "inputs": _spec_dicts(stage.inputs),
                       "outputs": _spec_dicts(stage.outputs)}
    return entry


def add_helper_graphs(model_dir: str | os.PathLike[str]) -> Path:
    """Give a folder exported before helper graphs existed its helper graphs (no re-export needed).

    The stage graphs and engines are untouched; run ``jamsdk build`` afterwards so the helpers get
    engines too. Returns the updated manifest path.
    """
    from jamsdk.manifest import load_manifest
    from jamsdk.manifest_write import write_manifest

    manifest = load_manifest(model_dir)
    data = dict(manifest.data)
    data["helpers"] = write_helper_graphs(model_dir, manifest.image_size, manifest.num_regions)
    return write_manifest(model_dir, data)
