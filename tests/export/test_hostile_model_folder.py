"""Hostile model folders: ONNX external data (hashed and checked), deeply nested manifests, control
characters in file names — a typed one-line error, never a traceback or unchecked weights."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from jamsdk.errors import InputError, ManifestError
from jamsdk.export.pipeline import export_checkpoint
from jamsdk.manifest import load_manifest
from jamsdk.model_files import file_ref, sha256_file

onnx = pytest.importorskip("onnx")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def model(tiny_checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("hostile") / "model"
    export_checkpoint(tiny_checkpoint, out, precision="fp32", log=lambda _m: None)
    return out


@pytest.fixture()
def copy(model, tmp_path):
    target = tmp_path / "model"
    shutil.copytree(model, target)
    return target


def edit(folder: Path, change) -> None:
    path = folder / "manifest.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def externalize(folder: Path, stage: str = "generator") -> Path:
    """Re-save ``<stage>.onnx`` with its weights in ``<stage>.weights`` (ONNX external data)."""
    path = folder / f"{stage}.onnx"
    proto = onnx.load(str(path))
    onnx.save_model(proto, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=f"{stage}.weights", size_threshold=1024)  # small shape tensors stay inline
    return folder / f"{stage}.weights"


def run_frame(folder: Path) -> np.ndarray:
    from jamsdk import Animator

    rng = np.random.default_rng(0)
    with Animator(folder, backend="onnxruntime", threads=1) as anim:
        anim.set_source(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
        return anim.run(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))


def test_external_data_is_hashed_and_checked(model, copy):
    want = run_frame(model)
    weights = externalize(copy)
    assert weights.stat().st_size > 1000
    ref = file_ref(copy, "generator.onnx")
    assert ref["external_data"] == [{"file": "generator.weights", "sha256": sha256_file(weights)}]
    edit(copy, lambda d: d["stages"]["generator"]["files"].update(fp32=ref))
    np.testing.assert_array_equal(run_frame(copy), want)  # the same graph, its weights beside it
    assert load_manifest(copy).stage("generator").files["fp32"].external[0].file == "generator.weights"

    data = bytearray(weights.read_bytes())
    weights.write_bytes(bytes(len(data)))  # zeroed weights: garbage frames unless caught
    with pytest.raises(ManifestError, match=r"external_data\[0\]: generator.weights has sha256 .* the manifest says"):
        load_manifest(copy)
    weights.write_bytes(bytes(data))
    # A graph whose weights file the manifest does not record is refused, whatever the graph's hash.
    edit(copy, lambda d: d["stages"]["generator"]["files"]["fp32"].pop("external_data"))
    with pytest.raises(ManifestError, match="generator.onnx loads external data 'generator.weights', which the "
                                            "manifest does not record"):
        load_manifest(copy)
    # Recorded names follow the same rules as graph names.
    edit(copy, lambda d: d["stages"]["generator"]["files"]["fp32"].update(
        external_data=[{"file": "../generator.weights", "sha256": "0" * 64}]))
    with pytest.raises(ManifestError, match="must be a plain name inside the model folder"):
        load_manifest(copy)


def _resign(folder: Path, stage: str = "generator") -> None:
    """Record the graph's new hash in the manifest, as an attacker who can write the folder would."""
    edit(folder, lambda d: d["stages"][stage]["files"]["fp32"].update(sha256=sha256_file(folder / f"{stage}.onnx")))


def test_an_unreadable_external_data_entry_does_not_let_unlisted_weights_in(model, copy):
    """The probe's X3: one external_data entry with a key of invalid UTF-8 on a non-external tensor
    made jamsdk's reader fail, which counted as "loads no external data"; the unlisted weights then
    ran unchecked (zeroed: garbage frames, exit 0). ONNX Runtime ignores the entry, so must we: the
    graph's real external data is found and refused as unlisted. Its neighbour, a graph that cannot
    be read at all, is refused too (fail closed)."""
    weights = externalize(copy)
    path = copy / "generator.onnx"
    proto = onnx.load(str(path), load_external_data=False)
    inline = next(t for t in proto.graph.initializer if t.data_location != onnx.TensorProto.EXTERNAL)
    entry = inline.external_data.add()
    entry.key, entry.value = "KEYX", "nothing"
    data = proto.SerializeToString()
    assert data.count(b"KEYX") == 1
    path.write_bytes(data.replace(b"KEYX", b"\xff\xfe\xfd\xfc"))  # same length: the protobuf stays valid
    weights.write_bytes(bytes(weights.stat().st_size))  # zeroed, and not in the manifest
    _resign(copy)
    with pytest.raises(ManifestError, match="generator.onnx loads external data 'generator.weights', which the "
                                            "manifest does not record"):
        load_manifest(copy)
    r = _cli_animate(copy, copy.parent)
    lines = [line for line in r.stderr.strip().splitlines() if "note: " not in line]
    assert r.returncode == 2 and len(lines) == 1 and "does not record with a hash" in lines[0], r.stderr[-2000:]
    assert not (copy.parent / "o.mp4").exists()
    path.write_bytes(b"\x0a\xff\xff\xff\xff\x0f")  # a field longer than the file: no reader can parse it
    _resign(copy)
    with pytest.raises(ManifestError, match="cannot tell which external data generator.onnx loads"):
        load_manifest(copy)


def test_deeply_nested_protobuf_groups_are_one_line(copy, tmp_path):
    """The probe's M17: a re-signed graph ending in 200,000 nested protobuf groups was a RecursionError
    traceback; 100 levels (protobuf's own limit) are still skipped as unknown fields."""
    path = copy / "generator.onnx"
    graph = path.read_bytes()
    start, end = bytes([(100 << 3 | 3) & 0x7F | 0x80, (100 << 3 | 3) >> 7]), bytes([(100 << 3 | 4) & 0x7F | 0x80,
                                                                                     (100 << 3 | 4) >> 7])
    path.write_bytes(graph + start * 90 + end * 90)
    _resign(copy)
    load_manifest(copy)  # 90 nested unknown groups: read past, as protobuf would
    path.write_bytes(graph + start * 200_000 + end * 200_000)
    _resign(copy)
    with pytest.raises(ManifestError, match=r"generator.onnx: not a well-formed ONNX graph \(groups nested too deep"):
        load_manifest(copy)
    r = _cli_animate(copy, tmp_path)
    lines = [line for line in r.stderr.strip().splitlines() if "note: " not in line]
    assert r.returncode == 2 and len(lines) == 1 and "nested too deep" in lines[0], r.stderr[-2000:]


@pytest.mark.parametrize("value, needle", [
    ("1" * 5000, "Exceeds the limit"), ("NaN", "NaN is not a JSON number"), ("Infinity", "Infinity is not a JSON"),
    ("-Infinity", "-Infinity is not a JSON"), ("1e999", "1e999 is not a finite number")])
def test_numbers_json_allows_but_no_manifest_holds_are_one_line(copy, tmp_path, value, needle):
    """The probe's M3 (a 5,000-digit integer: ValueError traceback) and M4-M5 (1e999 and NaN accepted)."""
    text = (copy / "manifest.json").read_text()
    # the probe's fields: a 5,000-digit image_size; temperature (a float no ONNX graph reads) NaN or 1e999
    field = '"image_size": 64' if value.startswith("1" * 10) else '"temperature": 0.1'
    assert text.count(field) >= 1
    (copy / "manifest.json").write_text(text.replace(field, f'{field.split(":")[0]}: {value}', 1))
    with pytest.raises(ManifestError, match=needle):
        load_manifest(copy)
    if value.startswith("1" * 10):
        r = _cli_animate(copy, tmp_path)
        lines = [line for line in r.stderr.strip().splitlines() if "note: " not in line]
        assert r.returncode == 2 and len(lines) == 1 and "not a jamsdk manifest" in lines[0], r.stderr[-2000:]


def test_large_finite_numbers_and_long_integers_under_pythons_limit_still_parse(copy):
    data = json.loads((copy / "manifest.json").read_text())
    data["export"] = {"note": 1e308, "big": int("9" * 4000)}  # kept, not interpreted
    (copy / "manifest.json").write_text(json.dumps(data))
    assert load_manifest(copy).data["export"]["note"] == 1e308


def test_a_symlinked_or_oversized_manifest_is_refused(copy, tmp_path):
    """The probe's M14/M15: a manifest.json that is a symlink to a file elsewhere, and a 200 MB one
    (651 MB of memory to parse), were accepted."""
    real = tmp_path / "elsewhere.json"
    shutil.move(copy / "manifest.json", real)
    (copy / "manifest.json").symlink_to(real)
    with pytest.raises(ManifestError, match="manifest.json: is a symbolic link"):
        load_manifest(copy)
    (copy / "manifest.json").unlink()
    text = real.read_text()
    (copy / "manifest.json").write_text(text + " " * (4 * 2**20 - len(text.encode())))  # exactly at the cap
    assert load_manifest(copy).stages
    with open(copy / "manifest.json", "a") as fh:
        fh.write(" ")
    with pytest.raises(ManifestError, match=r"over the limit of 4 MiB for a manifest.json \(refused before reading"):
        load_manifest(copy)


def test_a_graph_symlinked_into_a_sibling_folder_sharing_the_prefix_is_refused(copy):
    """`model/generator.onnx` → `model-evil/generator.onnx` with the right hash: the sibling's name
    starts with the folder's, so a string-prefix containment check would let it in."""
    evil = copy.parent / f"{copy.name}-evil"
    evil.mkdir()
    shutil.move(copy / "generator.onnx", evil / "generator.onnx")
    (copy / "generator.onnx").symlink_to(evil / "generator.onnx")
    with pytest.raises(ManifestError, match=r"generator.onnx leads outside the model folder \(to .*model-evil"):
        load_manifest(copy)


def test_unverified_loads_skip_the_graph_scan(copy):
    externalize(copy)
    ref = file_ref(copy, "generator.onnx")
    edit(copy, lambda d: d["stages"]["generator"]["files"].update(fp32=ref))
    assert load_manifest(copy, verify_hashes=False).stage("generator").files["fp32"].external


@pytest.mark.parametrize("bad, needle", [
    ("generator\x00.onnx", "holds control characters"),
    ("generator.onnx\n", "holds control characters"),
])
def test_control_characters_in_file_names(copy, bad, needle):
    edit(copy, lambda d: d["stages"]["generator"]["files"]["fp32"].update(file=bad))
    with pytest.raises(ManifestError, match=needle):
        load_manifest(copy)


def test_deeply_nested_manifest(copy):
    (copy / "manifest.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ManifestError, match="nested too deeply"):
        load_manifest(copy)


def _cli_animate(model_dir: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jamsdk", "animate", "--model", str(model_dir), "--source",
                           str(ROOT / "jamsdk/assets/example_source.png"), "--driving",
                           str(ROOT / "jamsdk/assets/example_driving.mp4"), "--out", str(tmp_path / "o.mp4"),
                           "--backend", "onnxruntime", "--max-frames", "2"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)


def test_cli_one_line_for_hostile_manifests(copy, tmp_path):
    manifest = (copy / "manifest.json").read_text()
    for text, needle in (("[" * 100_000 + "]" * 100_000, "nested too deeply"),
                         (manifest.replace('"generator.onnx"', '"generator\\u0000.onnx"'), "control characters")):
        (copy / "manifest.json").write_text(text)
        r = _cli_animate(copy, tmp_path)
        lines = [line for line in r.stderr.strip().splitlines() if "note: " not in line]
        assert r.returncode == 2 and len(lines) == 1 and needle in lines[0], r.stderr[-2000:]


def test_refused_checkpoints_are_one_line_without_unsafe_advice(tmp_path):
    import torch

    class Payload:
        def __reduce__(self):
            return (print, ("this must never run",))

    bad = tmp_path / "bad.pt"
    torch.save({"format": "jamsdk.checkpoint", "x": Payload()}, bad)
    r = subprocess.run([sys.executable, "-m", "jamsdk", "export", "--checkpoint", str(bad), "--out",
                        str(tmp_path / "out")], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "not a plain tensor checkpoint" in lines[0] and "(print)" in lines[0]
    assert "weights_only=False" not in r.stderr and "this must never run" not in r.stdout + r.stderr
    assert not (tmp_path / "out").exists()
    from jamsdk.model.mraa_checkpoint import read_mraa_checkpoint

    with pytest.raises(InputError, match="MRAA checkpoint .* not a plain tensor checkpoint"):
        read_mraa_checkpoint(bad)
