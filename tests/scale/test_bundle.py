"""A model folder shipped through Ray's object store: written once per node, checked on reuse."""

import tempfile

import pytest

from jamsdk.errors import InputError
from jamsdk.scale.bundle import content_key, read_folder


def model_folder(tmp_path):
    folder = tmp_path / "model"
    (folder / "int8_cpu").mkdir(parents=True)
    (folder / "manifest.json").write_text('{"x": 1}')
    (folder / "generator.onnx").write_bytes(b"\x01\x02")
    (folder / "int8_cpu" / "avd.onnx").write_bytes(b"\x03")
    return folder


def test_read_folder_and_key(tmp_path):
    folder = model_folder(tmp_path)
    files = read_folder(folder)
    assert sorted(files) == ["generator.onnx", "int8_cpu/avd.onnx", "manifest.json"]
    key = content_key(files)
    assert key == content_key(dict(reversed(list(files.items()))))
    assert key != content_key({**files, "generator.onnx": b"\x01\x03"})
    assert key != content_key({("gen.onnx" if k == "generator.onnx" else k): v for k, v in files.items()})
    (folder / "link.onnx").symlink_to(folder / "generator.onnx")
    with pytest.raises(InputError, match="link.onnx is not a regular file"):
        read_folder(folder)
    with pytest.raises(InputError, match="expected an exported model folder"):
        read_folder(folder / "int8_cpu")


def test_shipped_folder_is_written_once_and_checked(tmp_path, ray_local):
    from jamsdk.scale.bundle import ship

    folder = model_folder(tmp_path)
    bundle = ship(ray_local, folder)
    cache = tmp_path / "node-tmp"
    cache.mkdir()

    @ray_local.remote(num_cpus=0)
    def on_node(b, tmp):
        import os

        saved = os.environ.pop("JAMSDK_MODEL_CACHE", None), tempfile.tempdir
        tempfile.tempdir = tmp  # this worker's temp folder: the "node" cache lives there
        try:
            first = b.folder()
            stamp = (first / "manifest.json").stat().st_mtime_ns
            again = b.folder()
            return str(first), str(again), stamp == (again / "manifest.json").stat().st_mtime_ns
        finally:  # the worker process serves later tasks and actors of the session
            if saved[0] is not None:
                os.environ["JAMSDK_MODEL_CACHE"] = saved[0]
            tempfile.tempdir = saved[1]

    first, again, untouched = ray_local.get(on_node.remote(bundle, str(cache)))
    assert first == again and untouched  # the second use found the folder and did not rewrite it
    assert first.endswith(bundle.key) and read_folder(first) == read_folder(folder)

    # A damaged cached copy is not used: the actor gets a fresh copy and the damaged one is left alone.
    (tmp_path / "node-tmp").joinpath(first.split("/")[-2], bundle.key, "generator.onnx").write_bytes(b"bad")
    other, _, _ = ray_local.get(on_node.remote(bundle, str(cache)))
    assert other != first and read_folder(other) == read_folder(folder)


def test_cache_keeps_recent_models_and_removes_old_unused_ones(tmp_path):
    import os
    import time

    from jamsdk.scale.bundle import evict

    now = time.time()
    ages = {"a": 10, "b": 20, "c": 30, "d": 4000, "e": 5000}  # seconds since last use
    for name, age in ages.items():
        folder = tmp_path / (name * 64)
        folder.mkdir()
        os.utime(folder, (now - age, now - age))
    staging_old, staging_new = tmp_path / ".0123456789abcdef.tmp-ab_cd123", tmp_path / ".0123456789abcdef.tmp-zz_zz999"
    other = tmp_path / ("f" * 63)  # not a name the cache makes
    for folder, age in ((staging_old, 4000), (staging_new, 5), (other, 9000)):
        folder.mkdir()
        os.utime(folder, (now - age, now - age))
    removed = evict(tmp_path, keep=2, after_s=600)
    assert sorted(p.name for p in removed) == sorted([staging_old.name, "d" * 64, "e" * 64])
    # "c" is beyond the two most recent but was used 30 s ago: kept (an actor may still be loading it)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["a" * 64, "b" * 64, "c" * 64, staging_new.name,
                                                                   other.name])
