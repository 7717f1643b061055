"""Writing a model folder's ``manifest.json``, and deciding whether an existing folder may be replaced.

``jamsdk export`` hashes each file it writes (:func:`jamsdk.model_files.file_ref`), describes each
stage (:func:`stage_to_dict`), assembles the manifest (:func:`new_manifest`) and writes it with
:func:`write_manifest`, which validates it with the reader first; ``jamsdk build`` adds the
``engines`` section the same way. Before either replaces a folder, :func:`model_folder_problem`
says whether jamsdk provably wrote everything in it. Torch-free.
"""

from __future__ import annotations

import json
import os
from pathlib import Path, PurePosixPath
from typing import Any, Mapping, Sequence

from jamsdk._atomic import atomic_path
from jamsdk.config import ModelConfig
from jamsdk.errors import ManifestError
from jamsdk.manifest import FORMAT, FORMAT_VERSION, MODES, PIXEL, parse_manifest, read_manifest_json
from jamsdk.model_files import MANIFEST_NAME
from jamsdk.stages import Stage, TensorSpec


def spec_to_dict(spec: TensorSpec) -> dict[str, Any]:
    return {"name": spec.name, "shape": list(spec.shape), "dtype": spec.dtype}


def stage_to_dict(stage: Stage, files: Mapping[str, Mapping[str, str]]) -> dict[str, Any]:
    """A manifest ``stages`` entry for ``stage`` with ``files`` (precision → :func:`file_ref`)."""
    return {"per": stage.per, "files": {p: dict(f) for p, f in files.items()},
            "inputs": [spec_to_dict(s) for s in stage.inputs],
            "outputs": [spec_to_dict(s) for s in stage.outputs]}


def new_manifest(cfg: ModelConfig, size: int, opset: int, stages: Mapping[str, Mapping[str, Any]],
                 precisions: Sequence[str], **extra: Any) -> dict[str, Any]:
    """The manifest dict for an export of ``cfg`` at ``size`` (``stages``: name → :func:`stage_to_dict`)."""
    from jamsdk._version import __version__

    modes = [m for m in MODES if m != "avd" or "avd" in stages]
    data = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "jamsdk_version": __version__,
        "model": cfg.to_dict(), "image_size": size, "num_regions": cfg.num_regions, "opset": opset,
        "pixel": dict(PIXEL), "align_corners": cfg.align_corners, "modes": modes,
        "precisions": list(precisions), "stages": {k: dict(v) for k, v in stages.items()}, "engines": None,
    }
    data.update(extra)
    return data


def write_manifest(model_dir: str | os.PathLike[str], data: Mapping[str, Any]) -> Path:
    """Validate ``data`` and write ``<model_dir>/manifest.json`` atomically.

    The listed files must exist in ``model_dir``; their hashes are not recomputed here (take them
    from :func:`file_ref` right after writing each file).
    """
    model_dir = Path(model_dir)
    parse_manifest(model_dir, data, verify_hashes=False)
    target = model_dir / MANIFEST_NAME
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return target


def model_folder_problem(folder: str | os.PathLike[str]) -> str | None:
    """None when ``folder`` is provably a jamsdk model folder, else why not (for replacing it).

    Provably: ``manifest.json`` is a regular file that parses as jamsdk's format, and every entry in
    the folder is a file it lists (graphs, their external data, engines, helpers) or the manifest
    itself, so replacing the folder deletes nothing jamsdk did not write.
    """
    folder = Path(folder)
    path = folder / MANIFEST_NAME
    if path.is_symlink() or not path.is_file():
        return f"not a jamsdk model folder (no {MANIFEST_NAME})"
    try:
        data = read_manifest_json(path)
    except ManifestError:
        return f"not a jamsdk model folder (its {MANIFEST_NAME} is not a readable jamsdk manifest)"
    if not isinstance(data, Mapping) or data.get("format") != FORMAT or not _is_int(data.get("format_version")):
        got = data.get("format") if isinstance(data, Mapping) else type(data).__name__
        return f"not a jamsdk model folder (its {MANIFEST_NAME} has format {got!r}, not {FORMAT!r})"
    listed = {MANIFEST_NAME}

    def collect(node: Any, depth: int = 0) -> None:
        if depth > 16:
            return
        if isinstance(node, Mapping):
            if isinstance(node.get("file"), str) and isinstance(node.get("sha256"), str):
                # parts[:1]: an empty name ("") lists nothing (and parts[0] of it was an IndexError)
                listed.update(PurePosixPath(node["file"].replace("\\", "/")).parts[:1])
            for value in node.values():
                collect(value, depth + 1)
        elif isinstance(node, list):
            for value in node:
                collect(value, depth + 1)

    collect(data)
    try:
        extra = sorted(n for n in os.listdir(folder) if n not in listed)
    except OSError as exc:
        return f"cannot be listed ({exc.strerror or exc})"
    if extra:
        shown = ", ".join(extra[:5]) + (f" and {len(extra) - 5} more" if len(extra) > 5 else "")
        return f"holds files its {MANIFEST_NAME} does not list ({shown}), which replacing it would delete"
    return None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
