"""`jamsdk batch` on a local Ray: a 24-row job over 2 actors, a corrupt row, a resumed re-run; refused outputs,
cleaned leftovers, a killed actor, a stopped or killed command."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from jamsdk.video import read_frames
from jamsdk.video_write import write_video

pytest.importorskip("ray")
pytest.importorskip("onnxruntime")

ROWS = 24


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    """3 pictures × 2 clips of 4 frames; row 7's picture is corrupt, row 12's video is missing."""
    work = tmp_path_factory.mktemp("job")
    rng = np.random.default_rng(3)
    for i in range(3):
        cv2.imwrite(str(work / f"pic{i}.png"), rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    (work / "corrupt.png").write_bytes(b"\x89PNG not really")
    for j in range(2):
        write_video(work / f"clip{j}.mp4", [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(4)],
                    fps=10)
    rows = [{"source": f"pic{i % 3}.png", "driving": f"clip{i % 2}.mp4", "out": f"out/row{i + 1}.mp4"}
            for i in range(ROWS)]
    rows[6]["source"] = "corrupt.png"
    rows[11]["driving"] = "missing.mp4"
    (work / "jobs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return work


def test_job_with_two_actors_then_resume(job, tiny_batched, ray_local):
    from jamsdk.scale.offline import run_job

    out_dir = job / "outs"
    lines = []
    summary = run_job(job / "jobs.jsonl", out_dir, tiny_batched, actors=2, threads=1, backend="onnxruntime",
                      log=lines.append)
    failed = {r["index"]: r["error"] for r in summary.results if r["status"] == "failed"}
    assert sorted(failed) == [7, 12]
    assert "row 7:" in failed[7] and "corrupt.png" in failed[7]
    assert "row 12:" in failed[12] and "missing.mp4" in failed[12]
    assert (summary.done, summary.failed, summary.skipped) == (ROWS - 2, 2, 0)
    assert summary.frames == 4 * (ROWS - 2) and summary.frames_per_s > 0
    for i in range(1, ROWS + 1):
        path = out_dir / "out" / f"row{i}.mp4"
        assert path.is_file() == (i not in failed)
    assert read_frames(out_dir / "out" / "row1.mp4").shape == (4, 64, 64, 3)
    assert not list(out_dir.rglob(".*tmp*"))  # atomic writes leave no temporary files
    done = [r for r in summary.results if r["status"] == "done"]
    assert len({r["pid"] for r in done}) == 2  # both actors animated rows
    # each actor encodes each picture at most once; every other row reuses the cached encoding
    assert sum(not r["source_cached"] for r in done) <= 2 * 3
    assert any(line.startswith("[") and "row 1:" in line for line in lines)
    assert summary.runtimes == ["onnxruntime fp32 b1"] and summary.to_dict()["runtimes"] == summary.runtimes

    # re-run: finished rows are skipped, only the failed ones are tried again
    again = run_job(job / "jobs.jsonl", out_dir, tiny_batched, actors=2, threads=1, backend="onnxruntime")
    assert (again.done, again.skipped, again.failed) == (0, ROWS - 2, 2)

    # --overwrite: every row runs again and replaces its output (the old bytes are gone, none is left half)
    (out_dir / "out" / "row1.mp4").write_bytes(b"an older output")
    redo = run_job(job / "jobs.jsonl", out_dir, tiny_batched, actors=2, threads=1, backend="onnxruntime",
                   overwrite=True)
    assert (redo.done, redo.skipped, redo.failed) == (ROWS - 2, 0, 2)
    assert read_frames(out_dir / "out" / "row1.mp4").shape == (4, 64, 64, 3)
    assert not list(out_dir.rglob(".*tmp*"))


def test_default_job_runs_int8_where_the_export_passed_it(job, tiny_batched_int8, ray_local):
    """`jamsdk batch` with its defaults (backend and precision auto) on an INT8 folder: INT8, OpenVINO first."""
    import importlib.util
    import io

    from jamsdk.scale.offline import print_summary, run_job

    rows = job / "two.jsonl"
    rows.write_text("".join(json.dumps({"source": f"pic{i}.png", "driving": "clip0.mp4", "out": f"int8/{i}.mp4"}) + "\n"
                            for i in range(2)))
    summary = run_job(rows, job / "outs-int8", tiny_batched_int8, actors=1, threads=1, precision="auto")
    backend = "openvino" if importlib.util.find_spec("openvino") else "onnxruntime"
    assert summary.done == 2 and summary.runtimes == [f"{backend} int8 b1"]  # max_batch auto: 1 frame per call on a CPU
    text = io.StringIO()
    print_summary(summary, file=text)
    assert f"; {backend} int8 b1)" in text.getvalue()


def test_cli_errors_before_any_work(tmp_path, capsys):
    from jamsdk.cli import main

    assert main(["batch", "--jobs", str(tmp_path / "absent.csv"), "--out-dir", str(tmp_path), "--model",
                 str(tmp_path)]) == 2
    assert "expected an exported model folder" in capsys.readouterr().err


def test_symlinked_out_is_refused_and_stale_leftovers_are_cleaned(job, tiny_batched, ray_local, tmp_path):
    """A row whose out leads out of --out-dir through a symlink fails and writes nothing there; the
    temporary file an interrupted run left beside a row's output and a killed actor's scratch folder go."""
    import os
    import subprocess
    import sys
    import tempfile
    import time

    from jamsdk.scale.offline import run_job

    out_dir, outside = tmp_path / "outs", tmp_path / "outside"
    (out_dir / "a").mkdir(parents=True)
    outside.mkdir()
    (out_dir / "escape").symlink_to(outside, target_is_directory=True)
    rows = [{"source": str(job / "pic0.png"), "driving": str(job / "clip0.mp4"), "out": out}
            for out in ("a/one.mp4", "escape/two.mp4", "three.mp4")]
    (tmp_path / "jobs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    old = time.time() - 3600
    stale = out_dir / "a" / ".one.mp4.tmp-k3_9zq0a.mp4"  # a run killed while writing a/one.mp4 left this
    stale.write_bytes(b"half a video")
    os.utime(stale, (old, old))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    scratch = Path(tempfile.gettempdir()) / f"jamsdk-batch-{dead.pid}-abcd_123"  # a killed actor's
    scratch.mkdir()
    (scratch / "row3").mkdir()

    summary = run_job(tmp_path / "jobs.jsonl", out_dir, tiny_batched, actors=1, threads=1, backend="onnxruntime")
    by_index = {r["index"]: r for r in summary.results}
    assert by_index[1]["status"] == by_index[3]["status"] == "done"
    assert by_index[2]["status"] == "failed" and "leads outside --out-dir" in by_index[2]["error"]
    assert list(outside.iterdir()) == []
    assert (out_dir / "a" / "one.mp4").is_file() and (out_dir / "three.mp4").is_file()
    assert summary.cleaned == [str(stale)] and not stale.exists()
    assert not scratch.exists()
    assert all(by_index[i]["node"] and by_index[i]["node_ip"] for i in (1, 3))
    assert summary.nodes == {by_index[1]["node"]: {"ip": by_index[1]["node_ip"], "rows": 2}}


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGKILL"])
def test_a_stopped_or_killed_job_leaves_no_ray_process(job, tiny_batched, tmp_path, sig):
    """`jamsdk batch` on its own local Ray, stopped with SIGTERM or killed with SIGKILL mid-job: within a few
    seconds no process of its Ray (GCS, raylet, agents, workers) is left, nor a temporary file among the outputs.
    (Without a watcher, Ray's dashboard and runtime-env agents outlive a SIGKILL of the driver by about a minute.)"""
    import os
    import signal
    import subprocess
    import sys
    import time

    from jamsdk.scale.loopback import _session_pids

    out_dir = tmp_path / "outs"
    proc = subprocess.Popen([sys.executable, "-m", "jamsdk", "batch", "--jobs", str(job / "jobs.jsonl"), "--out-dir",
                             str(out_dir), "--model", str(tiny_batched), "--threads", "1", "--backend", "onnxruntime"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, env={**os.environ, "RAY_ADDRESS": ""})
    try:
        for line in proc.stdout:
            if line.startswith("[1/"):  # Ray, its agents and an actor are up, rows are being written
                break
        assert len(_session_pids(proc.pid)) > 3, "the job should be running on its own Ray"
        proc.send_signal(getattr(signal, sig))
        proc.wait(timeout=60)
        deadline = time.monotonic() + 15
        while _session_pids(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.5)
        left = [open(f"/proc/{p}/cmdline", "rb").read().split(b"\0")[0][-60:] for p in _session_pids(proc.pid)]
        assert left == [], left
        assert not [p for p in out_dir.rglob("*") if ".tmp-" in p.name]
    finally:
        for pid in _session_pids(proc.pid):
            os.kill(pid, signal.SIGKILL)


def test_an_actor_killed_mid_job_fails_its_rows_only(job, tiny_batched, ray_local, tmp_path):
    """An actor process killed while it holds rows: those rows are reported failed (the actor died), a new
    actor takes its place, and every other row is done."""
    import os
    import signal
    import threading

    import ray._private.state as state

    from jamsdk.scale.offline import run_job

    killed = []

    def log(line):
        if line.startswith("[1/") and not killed:  # the first row is written: both actors are up and busy
            alive = [a for a in state.actors().values()
                     if a["ActorClassName"] == "RowAnimator" and a["State"] == "ALIVE" and a["Pid"]]
            killed.append(alive[0]["Pid"])
            threading.Thread(target=os.kill, args=(killed[0], signal.SIGKILL)).start()

    summary = run_job(job / "jobs.jsonl", tmp_path / "outs", tiny_batched, actors=2, threads=1, backend="onnxruntime",
                      log=log)
    died = [r for r in summary.results if "died" in r["error"]]
    assert killed and 1 <= len(died) <= 2, summary.results  # the rows it held (two at most)
    assert summary.done + summary.failed == ROWS
    assert summary.failed == len(died) + 2  # plus the corrupt picture and the missing video
    assert summary.done == ROWS - 2 - len(died)
