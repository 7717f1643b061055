"""The stage table: the one place that names every deployable stage and its tensors.

The model modules, the ONNX exporter, the engine builder, the manifest and the Animator all read
this table, and one name is used everywhere: ``region_predictor`` (module) →
``region_predictor.onnx`` → ``region_predictor.engine`` → manifest key ``region_predictor``.

Torch-free on purpose: the runtime uses it on machines without training dependencies.
"""

from __future__ import annotations

from dataclasses import dataclass

from jamsdk.config import ModelConfig

PER_SOURCE = "source"
PER_FRAME = "frame"


@dataclass(frozen=True)
class TensorSpec:
    """One graph input or output: name, static shape, dtype (as numpy names it)."""

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"


@dataclass(frozen=True)
class Stage:
    """One exported graph. ``per`` says whether it runs once per source or for every frame."""

    name: str
    per: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    doc: str = ""


def region_param_specs(prefix: str, k: int) -> tuple[TensorSpec, ...]:
    p = f"{prefix}_" if prefix else ""
    return (TensorSpec(f"{p}shift", (1, k, 2)), TensorSpec(f"{p}covar", (1, k, 2, 2)),
            TensorSpec(f"{p}affine", (1, k, 2, 2)))


def feature_shapes(cfg: ModelConfig, size: int | None = None) -> list[tuple[int, int, int, int]]:
    """Shapes of the generator encoder's outputs ``source_feature_i`` (i = 0 … num_down_blocks)."""
    s = cfg.image_size if size is None else size
    g = cfg.generator
    shapes = [(1, g.block_expansion, s, s)]
    for i in range(g.num_down_blocks):
        c = min(g.max_features, g.block_expansion * 2 ** (i + 1))
        shapes.append((1, c, s // 2 ** (i + 1), s // 2 ** (i + 1)))
    return shapes


def stage_table(cfg: ModelConfig, size: int | None = None, with_avd: bool | None = None) -> dict[str, Stage]:
    """Every stage the model at ``size`` (default: its own) exports, in the order a frame runs them.

    ``avd`` appears when the model has an AVD network (``with_avd`` overrides, e.g. for a checkpoint
    whose AVD network was never trained); ``bg_motion`` when the background type is not ``zero``.
    """
    s = cfg.image_size if size is None else size
    k = cfg.num_regions
    c = cfg.num_channels
    h = s // round(1 / cfg.dense_motion.scale_factor)
    image = (1, c, s, s)
    feats = tuple(TensorSpec(f"source_feature_{i}", shp) for i, shp in enumerate(feature_shapes(cfg, s)))
    has_bg = cfg.bg_motion.bg_type != "zero"
    has_avd = cfg.avd.enabled if with_avd is None else with_avd

    stages = [
        Stage("region_predictor", PER_FRAME, (TensorSpec("image", image),), region_param_specs("", k),
              "Image → per-region shift, covariance and PCA affine (closed-form 2×2 solver). Runs once per "
              "source and once per driving frame."),
        Stage("generator_encoder", PER_SOURCE, (TensorSpec("source", image),), feats,
              "Source-only half of the generator: first block and down blocks."),
    ]
    if has_bg:
        stages.append(Stage("bg_motion", PER_FRAME, (TensorSpec("source", image), TensorSpec("driving", image)),
                            (TensorSpec("bg_params", (1, 3, 3)),), "Background transform of the whole frame."))
    if has_avd:
        stages.append(Stage(
            "avd", PER_FRAME,
            (TensorSpec("source_shift", (1, k, 2)), TensorSpec("source_affine", (1, k, 2, 2)),
             TensorSpec("driving_shift", (1, k, 2)), TensorSpec("driving_affine", (1, k, 2, 2))),
            region_param_specs("", k), "Animation via disentanglement: driving pose in the source's shape."))
    dm_inputs = (TensorSpec("source", image),) + region_param_specs("source", k) + region_param_specs("driving", k)
    if has_bg:
        dm_inputs += (TensorSpec("bg_params", (1, 3, 3)),)
    stages.append(Stage("dense_motion", PER_FRAME, dm_inputs,
                        (TensorSpec("optical_flow", (1, h, h, 2)), TensorSpec("occlusion_map", (1, 1, h, h))),
                        "Region transforms → dense backward flow and occlusion map."))
    stages.append(Stage("generator", PER_FRAME,
                        (TensorSpec("source", image),) + feats
                        + (TensorSpec("optical_flow", (1, h, h, 2)), TensorSpec("occlusion_map", (1, 1, h, h))),
                        (TensorSpec("prediction", image),),
                        "Warps the cached source features, decodes the frame, blends with the warped source."))
    return {st.name: st for st in stages}


def batched(stage: Stage, batch: int) -> Stage:
    """``stage`` for ``batch`` independent streams per call: every tensor's leading dim is ``batch``.

    Batched graphs are exported side by side with the batch-1 ones at fixed sizes (static shapes
    keep every TensorRT hygiene check and CUDA-graph replay valid; no optimization profile), see
    :mod:`jamsdk.runtime.batch`.
    """
    if batch == 1:
        return stage

    def grow(specs: tuple[TensorSpec, ...]) -> tuple[TensorSpec, ...]:
        return tuple(TensorSpec(s.name, (batch,) + tuple(s.shape[1:]), s.dtype) for s in specs)

    return Stage(stage.name, stage.per, grow(stage.inputs), grow(stage.outputs), stage.doc)


def batchable(stage: Stage) -> bool:
    """Whether a stage is exported in batched sizes: the per-frame ones (per-source work is cached)."""
    return stage.per == PER_FRAME
