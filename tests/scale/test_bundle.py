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
        tempfile.tempdir = tmp  # this worker's temp folder: the "node" cache lives there
        first = b.folder()
        stamp = (first / "manifest.json").stat().st_mtime_ns
        again = b.folder()
        return str(first), str(again), stamp == (again / "manifest.json").stat().st_mtime_ns

    first, again, untouched = ray_local.get(on_node.remote(bundle, str(cache)))
    assert first == again and untouched  # the second use found the folder and did not rewrite it
    assert first.endswith(bundle.key) and read_folder(first) == read_folder(folder)

    # A damaged cached copy is not used: the actor gets a fresh copy and the damaged one is left alone.
    (tmp_path / "node-tmp").joinpath(first.split("/")[-2], bundle.key, "generator.onnx").write_bytes(b"bad")
    other, _, _ = ray_local.get(on_node.remote(bundle, str(cache)))
    assert other != first and read_folder(other) == read_folder(folder)
