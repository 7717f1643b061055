"""The files of a model folder: where they may live, and their hashes.

Every graph, engine and external-data file a ``manifest.json`` lists is a :class:`FileRef`: a plain
name inside the folder and its SHA-256. The writers hash what they wrote (:func:`file_ref`); the
readers (the manifest's stages and engines, the helper graphs) parse each entry with
:func:`parse_file_ref` and check the file with :func:`check_file` before anything loads it: inside
the folder (no absolute paths, no ``..``, no symlink leading out), present, unchanged, and for an
ONNX graph, loading no external data the manifest does not list. Torch-free.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Mapping

from jamsdk.errors import InputError, ManifestError
from jamsdk.input_files import check_input

MANIFEST_NAME = "manifest.json"
#: ``bad(key, why)``: the error to raise for a malformed manifest entry (names the file and key)
Bad = Callable[[str, str], Exception]


@dataclass(frozen=True)
class FileRef:
    """A file of the model folder with its SHA-256; ``file`` is relative to the folder.

    ``external`` lists the files an ONNX graph loads besides itself (external data), hashed too.
    """

    file: str
    sha256: str
    external: tuple[FileRef, ...] = ()


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_ref(model_dir: str | os.PathLike[str], file: str) -> dict[str, Any]:
    """``{"file": file, "sha256": ...}`` for a file already written inside ``model_dir``.

    An ONNX graph with external data also gets ``"external_data"``: each file it loads, hashed.
    """
    ref: dict[str, Any] = {"file": file, "sha256": sha256_file(Path(model_dir) / file)}
    if file.endswith(".onnx"):
        from jamsdk.onnx_external import external_files

        base = PurePosixPath(file).parent  # locations are relative to the graph's folder
        try:
            locations = external_files(Path(model_dir) / file)
        except InputError:
            locations = []  # not a parseable graph: it loads nothing (and no runtime loads it)
        ext = [str(base / loc) for loc in locations]
        if ext:
            ref["external_data"] = [{"file": name, "sha256": sha256_file(Path(model_dir) / name)} for name in ext]
    return ref


def plain_name(name: Any, key: str, bad: Bad) -> str:
    """``name`` when it is a plain relative file name inside the folder, else ``bad(key, why)``."""
    if not isinstance(name, str):
        raise bad(key, f"expected a file name, got {name!r}")
    pure = PurePosixPath(name.replace("\\", "/"))
    if not name or pure.is_absolute() or Path(name).is_absolute() or ".." in pure.parts or ":" in name:
        raise bad(key, f"file {name!r} must be a plain name inside the model folder")
    if any(not ch.isprintable() for ch in name):  # NUL and other control characters: no file has them
        raise bad(key, f"file {name!r} must be a plain name inside the model folder (it holds control characters)")
    return name


def parse_file_ref(raw: Any, key: str, bad: Bad) -> FileRef:
    """The :class:`FileRef` of a manifest entry ``{"file", "sha256", "external_data"?}``, checked for form only.

    ``bad(key, why)`` makes the error raised for a malformed entry (it names the manifest key).
    """
    if not isinstance(raw, Mapping) or not isinstance(raw.get("file"), str) or not isinstance(raw.get("sha256"), str):
        raise bad(key, f'expected {{"file": ..., "sha256": ...}}, got {raw!r}')
    name, digest = plain_name(raw["file"], key, bad), raw["sha256"]
    if len(digest) != 64 or any(ch not in "0123456789abcdef" for ch in digest):
        raise bad(key, f"sha256 {digest!r} is not 64 lowercase hex digits")
    external = raw.get("external_data", [])
    if not isinstance(external, list):
        raise bad(f"{key}.external_data", f"expected a list, got {external!r}")
    refs = tuple(parse_file_ref(item, f"{key}.external_data[{i}]", bad) for i, item in enumerate(external))
    if any(r.external for r in refs):
        raise bad(f"{key}.external_data", "external data files have no external data of their own")
    return FileRef(name, digest, refs)


def check_file(model_dir: Path, ref: FileRef, key: str, verify_hash: bool) -> None:
    """ManifestError unless ``ref`` is a file inside ``model_dir`` (and, with ``verify_hash``, unchanged).

    With ``verify_hash`` an ONNX graph's external data must be exactly what ``ref`` lists, hashed.
    """
    where = model_dir / MANIFEST_NAME
    path = model_dir / ref.file
    root = model_dir.resolve()
    real = path.resolve()
    # A symlink may point anywhere; only files that really live inside the folder are trusted.
    if real != root and root not in real.parents:
        raise ManifestError(f"{where}: {key}: {ref.file} leads outside the model folder (to {real})")
    if not path.is_file():
        raise ManifestError(f"{where}: {key}: {ref.file} is missing from {model_dir}")
    if ref.file.endswith(".onnx"):
        try:
            check_input(path, "onnx", what=f"{where}: {key}:")
        except InputError as exc:
            raise ManifestError(str(exc)) from None
    if verify_hash:
        actual = sha256_file(path)
        if actual != ref.sha256:
            raise ManifestError(f"{where}: {key}: {ref.file} has sha256 {actual[:16]}…, the manifest says "
                                f"{ref.sha256[:16]}… (the file was changed or damaged; re-export)")
    for i, ext in enumerate(ref.external):
        check_file(model_dir, ext, f"{key}.external_data[{i}]", verify_hash)
    if verify_hash and ref.file.endswith(".onnx"):
        # The graph's own list of the files it loads must be the manifest's: an unlisted one would
        # be loaded unchecked.
        from jamsdk.onnx_external import external_files

        base = PurePosixPath(ref.file).parent
        listed = {PurePosixPath(e.file) for e in ref.external}
        try:
            loads = external_files(path)
        except InputError as exc:
            # Which files it loads cannot be read: it is refused, never assumed to load none (a graph
            # ONNX Runtime parses where this reader fails would load its external data unchecked).
            raise ManifestError(f"{where}: {key}: cannot tell which external data {ref.file} loads ({exc}); "
                                "refused (re-export the folder with this jamsdk)") from None
        for loc in loads:
            target = base / PurePosixPath(loc.replace("\\", "/"))
            if target not in listed:
                raise ManifestError(f"{where}: {key}: {ref.file} loads external data {loc!r}, which the manifest "
                                    "does not record with a hash (re-export the folder with this jamsdk)")
