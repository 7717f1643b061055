"""The documentation site builds with ``mkdocs build --strict``, and every shell and Python block in it
(and in the README) runs as written, or says why it cannot run here.

A block runs in a sandbox folder that holds the names the pages use: ``face.png`` and ``me.png`` (the
bundled example picture), ``talk.mp4``, ``video.mp4``, ``driving.mp4`` and ``clip.mp4`` (the bundled
example clip), ``runs/jam/checkpoint.pt`` (a tiny JAM checkpoint), ``models/jam`` and ``model_dir``
(that checkpoint exported), ``data/shapes`` (a tiny synthetic data set) and links to the clone's
``train/`` and ``benchmarks/`` folders. Blocks of a page run in order, in one folder, so a block may
use what an earlier one wrote.

A block that cannot run here is preceded by ``<!-- docs: skip REASON -->`` with a REASON from
:data:`SKIP`; an unknown reason fails. The blocks run in the full suite (each starts jamsdk, seconds
apiece); ``<!-- docs: slow -->`` groups a page's longest blocks (training, INT8 export, Ray) in a test
of their own. The quick tier builds the site and checks the command reference.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
PAGES = sorted(DOCS.glob("*.md")) + [REPO / "README.md"]
RUNNABLE = {"sh": "shell", "bash": "shell", "console": None, "python": "python"}

#: why a block may not run here (each says where its behaviour is tested instead, if anywhere)
SKIP = {
    "gpu": "needs an NVIDIA GPU with TensorRT",
    "jetson": "needs a Jetson",
    "cluster": "needs a Ray cluster of several machines, or starts one",
    "camera": "needs a camera or a virtual-camera device",
    "download": "needs a file this machine cannot download (a released checkpoint, ImageNet weights, a data set)",
    "install": "installs packages into an environment: .ci/run and tests/test_wheel.py do that",
    "benchmark": "a measurement that runs for minutes; tests/benchmarks runs each script at smoke scale",
    "hours": "trains for hours on a CPU; tests/train runs the same commands on the tiny config",
    "server": "starts a server that runs until stopped; tests/live and tests/serve run them",
}

_BLOCK = re.compile(r"(?:^<!-- docs: (?P<marker>[^>]*?) -->\n)?^```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^```",
                    re.S | re.M)


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    lang: str
    marker: str
    body: str

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(REPO)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    text = page.read_text(encoding="utf-8")
    return [Block(page, text[:m.start("lang")].count("\n") + 1, m["lang"], (m["marker"] or "").strip(), m["body"])
            for m in _BLOCK.finditer(text) if RUNNABLE.get(m["lang"])]


ALL = [b for page in PAGES for b in blocks(page)]


def test_every_block_runs_or_says_why_not():
    bad = [f"{b.where}: <!-- docs: {b.marker} --> is neither 'slow' nor 'skip' with one of {sorted(SKIP)}"
           for b in ALL if b.marker and b.marker != "slow"
           and not (b.marker.startswith("skip ") and b.marker[5:] in SKIP)]
    assert not bad, "\n".join(bad)
    ran = [b for b in ALL if not b.marker.startswith("skip")]
    assert len(ran) >= 20, f"only {len(ran)} of {len(ALL)} doc blocks run"


def test_the_site_builds_strictly(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("material")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert proc.returncode == 0, proc.stderr[-4000:]
    built = {p.parent.name for p in (tmp_path / "site").glob("*/index.html")}
    pages = {p.stem for p in DOCS.glob("*.md")} - {"index"}
    assert pages <= built, f"pages not built: {sorted(pages - built)}"


def test_the_command_reference_is_the_parsers():
    proc = subprocess.run([sys.executable, str(DOCS / "gen_cli.py"), "--check"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory) -> Path:
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    import torch

    from jamsdk.bundled import ASSETS
    from jamsdk.config import load_model_config
    from jamsdk.export.pipeline import export_checkpoint
    from jamsdk.model.checkpoint import save_checkpoint
    from jamsdk.model.jam import build_model
    from jamsdk.train.synth import write_dataset

    root = tmp_path_factory.mktemp("docs-sandbox")
    for name in ("face.png", "me.png"):
        shutil.copy(ASSETS / "example_source.png", root / name)
    for name in ("talk.mp4", "video.mp4", "driving.mp4", "clip.mp4"):
        shutil.copy(ASSETS / "example_driving.mp4", root / name)
    for folder in ("train", "benchmarks"):
        (root / folder).symlink_to(REPO / folder, target_is_directory=True)
    torch.manual_seed(0)
    model = build_model(load_model_config("tiny-jam")).eval()
    (root / "runs" / "jam").mkdir(parents=True)
    save_checkpoint(root / "runs" / "jam" / "checkpoint.pt", model, model.cfg, meta={"avd_trained": True})
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        export_checkpoint(root / "runs" / "jam" / "checkpoint.pt", root / "models" / "jam", precision="fp32",
                          avd="on", log=lambda _msg: None)
    finally:
        torch.set_num_threads(threads)
    (root / "model_dir").symlink_to(root / "models" / "jam", target_is_directory=True)
    write_dataset(root / "data" / "shapes", clips=4, frames=4, size=64, seed=0, pairs=1)
    return root


def _run(block: Block, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "PYTHONWARNINGS": "ignore"}
    env.pop("PYTHONPATH", None)
    if RUNNABLE[block.lang] == "python":
        argv = [sys.executable, "-c", block.body]
    else:
        argv = ["bash", "-e", "-o", "pipefail", "-c", block.body]
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)


def _page_params(slow: bool) -> list:
    out = []
    for page in PAGES:
        chosen = [b for b in blocks(page) if not b.marker.startswith("skip") and (b.marker == "slow") == slow]
        if chosen:
            marks = [pytest.mark.slow] if slow else []
            out.append(pytest.param(chosen, id=page.name + ("-slow" if slow else ""), marks=marks))
    return out


def _run_page(chosen: list[Block], sandbox: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    shutil.copytree(sandbox, work, symlinks=True)
    for block in chosen:
        proc = _run(block, work)
        assert proc.returncode == 0, f"{block.where} failed ({proc.returncode}):\n{block.body}\n" \
                                     f"--- stdout\n{proc.stdout[-2000:]}\n--- stderr\n{proc.stderr[-3000:]}"


# Each page's blocks start jamsdk several times (seconds each): the full suite runs them, the quick
# tier keeps the strict build and the reference check.
@pytest.mark.slow
@pytest.mark.parametrize("chosen", _page_params(slow=False))
def test_the_blocks_of_a_page_run(chosen, sandbox, tmp_path):
    _run_page(chosen, sandbox, tmp_path)


@pytest.mark.parametrize("chosen", _page_params(slow=True))
def test_the_slow_blocks_of_a_page_run(chosen, sandbox, tmp_path):
    _run_page(chosen, sandbox, tmp_path)


def test_where_dev_is_installed_its_size_is_said():
    # The dev extra is ~1.9 GB against ~0.37 GB for the runtime: said beside the command that installs it.
    for page in (REPO / "README.md", DOCS / "quickstart.md"):
        text = page.read_text(encoding="utf-8")
        command = text.index('pip install -e ".[dev]" -c constraints.txt')
        after = text[command:command + 1200]
        assert "1.9 GB" in after and "0.37 GB" in after, page
