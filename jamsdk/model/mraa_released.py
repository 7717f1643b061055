"""MRAA's five released checkpoints, known by name, size and SHA-256, and the config each was trained with.

The sizes and hashes are those the Git LFS pointers of ``snap-research/articulated-animation``
recorded (commit ``451f7da`` "added checkpoints"; an LFS ``oid`` is the SHA-256 of the file
itself). The MRAA project now publishes the files in a Google Drive folder linked from its README.
Their configs ship with jamsdk (``jamsdk/configs/mraa/``, written from the documented values, no text of
the originals), so ``jamsdk convert-mraa`` converts a released file without ``--config``: it checks the
size first (a stat) and hashes only a file whose size is a released one's.

Importing this module is free: no torch, no file access.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from jamsdk.model_files import sha256_file

MRAA_CONFIGS = Path(__file__).resolve().parent.parent / "configs" / "mraa"
"""The released models' configs, shipped with jamsdk (``<name>.yaml``)."""


@dataclass(frozen=True)
class Released:
    """One released MRAA checkpoint."""

    name: str  # the config's and the file's stem: vox256 → vox256.pth, vox256.yaml
    bytes: int
    sha256: str
    data: str  # what it was trained on, hence what it animates
    size: int  # the square image size it was trained at (the converted model's default --size)
    config: Path | None = None  # None: MRAA_CONFIGS / f"{name}.yaml"

    @property
    def file(self) -> str:
        return f"{self.name}.pth"

    @property
    def config_path(self) -> Path:
        return self.config if self.config is not None else MRAA_CONFIGS / f"{self.name}.yaml"


RELEASED: tuple[Released, ...] = (
    Released("mgif256", 248_256_308, "58b796e31f763ccfbb240f959c9d92c2afe8a6e57da303e07d8fabd1f2921c68",
             "MGif: cartoon animals", 256),
    Released("taichi256", 273_409_176, "6fd5ebb68953d6c7d02ff765986efa1c8a62d349817fe736a6069e07dc8c17af",
             "TaiChi-HD: whole bodies", 256),
    Released("ted384", 273_409_224, "5c88fb60718a64a8fd87043b0e95781b50e500457d03bf3b4fd26cca6b70c3f7",
             "TED talks: upper bodies", 384),
    Released("ted-youtube384", 292_943_746, "75ce78089fc2f0b0a276346bf8f14c2043895845ed869bdbe9b2656d3feec13b",
             "TED talks (YouTube version): upper bodies", 384),
    Released("vox256", 291_747_542, "a8c59e0b38f96195eac6414265dcf8e4b15e0675cea2622489b735edc61b3b66",
             "VoxCeleb: talking faces", 256),
)


def identify(path: str | os.PathLike[str], table: Iterable[Released] = RELEASED) -> Released | None:
    """The released checkpoint ``path`` is, by size and then SHA-256; None for any other file.

    Only a file whose size is a released one's is hashed, so other checkpoints cost one stat.
    """
    try:
        size = os.stat(path).st_size
    except OSError:
        return None  # the conversion's own reading says what is wrong with the file
    same_size = [entry for entry in table if entry.bytes == size]
    if not same_size:
        return None
    digest = sha256_file(path)  # streamed in 1 MiB blocks (a released file is ~270 MB)
    return next((entry for entry in same_size if entry.sha256 == digest), None)


__all__ = ["MRAA_CONFIGS", "RELEASED", "Released", "identify"]
