"""A real two-node Ray cluster on loopback (a `ray start` head and a second `ray start` node, 1 CPU each, token
authentication on): `jamsdk batch` and `jamsdk serve` pointed at it as a user would, every way of failing to
connect as one line, and every process of the cluster gone afterwards.

The commands run in subprocesses from a folder without jamsdk in it (Ray adds the driver's folder to
the workers' import path, which would hide a node without jamsdk), with the cluster's token in the
environment the way Ray documents it (RAY_AUTH_MODE=token, RAY_AUTH_TOKEN).
"""

import json
import os
import signal
import subprocess
import sys
import sysconfig
import threading

import numpy as np
import pytest

from jamsdk.video import read_frames
from jamsdk.video_write import write_video

pytest.importorskip("ray")
pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a multi-node Ray on one machine: Linux")

RNG = np.random.default_rng(23)
PICTURES = [RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(2)]


@pytest.fixture(scope="module")
def cluster():
    from jamsdk.scale.loopback import LoopbackCluster

    c = LoopbackCluster(nodes=2, cpus_per_node=1)
    try:
        c.start()
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    import cv2

    work = tmp_path_factory.mktemp("cluster-job")
    for i, pic in enumerate(PICTURES):
        cv2.imwrite(str(work / f"pic{i}.png"), pic[:, :, ::-1])
    write_video(work / "clip.mp4", [RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(3)], fps=10)
    rows = [{"source": f"pic{i % 2}.png", "driving": "clip.mp4", "out": f"out/row{i + 1}.mp4"} for i in range(4)]
    rows.append({"source": "pic0.png", "driving": "missing.mp4", "out": "out/row5.mp4"})
    (work / "jobs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return work


def jamsdk(args, env, cwd, timeout=240):
    return subprocess.run([sys.executable, "-m", "jamsdk", *map(str, args)], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


def one_line_error(proc, match):
    """Exit 2, no traceback, and exactly one `error:` line, which says `match`."""
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and len(errors) == 1, proc.stderr[-2000:]
    assert match in errors[0], errors[0]


def test_batch_rows_run_on_both_nodes_and_resume(cluster, work, tiny_batched):
    env = cluster.client_env()
    env["RAY_ADDRESS"] = cluster.address  # Ray's own variable, instead of --ray
    proc = jamsdk(["batch", "--jobs", work / "jobs.jsonl", "--out-dir", work / "outs", "--model", tiny_batched,
                   "--actors", 2, "--threads", 1, "--backend", "onnxruntime", "--json", work / "report.json"],
                  env, work)
    assert proc.returncode == 1, proc.stderr[-3000:]  # one row failed; the others finished
    report = json.loads((work / "report.json").read_text())
    assert (report["done"], report["failed"], report["skipped"]) == (4, 1, 0)
    done = [r for r in report["results"] if r["status"] == "done"]
    assert len({r["node"] for r in done}) == 2, done  # rows landed on both nodes
    assert sorted(report["nodes"]) == sorted({r["node"] for r in done})
    assert [r["error"] for r in report["results"] if r["status"] == "failed"][0].startswith("row 5: driving")
    for i in range(1, 5):
        assert read_frames(work / "outs" / "out" / f"row{i}.mp4").shape == (3, 64, 64, 3)

    # Re-run: finished rows are skipped, the failed row is tried again. (Not through Ray Client: its
    # per-driver server on the head failed to start in about 1 run of 3 on the loaded 2-core machine
    # this was written on, which a CI test cannot afford; ray:// is checked by the pre-flight below.)
    proc = jamsdk(["batch", "--jobs", work / "jobs.jsonl", "--out-dir", work / "outs", "--model", tiny_batched,
                   "--ray", cluster.address, "--threads", 1, "--backend", "onnxruntime", "--json",
                   work / "again.json"], cluster.client_env(), work)
    assert (work / "again.json").exists(), proc.stderr[-3000:] + cluster.log_tail()
    again = json.loads((work / "again.json").read_text())
    assert proc.returncode == 1 and (again["done"], again["skipped"], again["failed"]) == (0, 4, 1)


def test_serve_replicas_on_both_nodes(cluster, tiny_batched, tmp_path):
    from jamsdk import Animator
    from jamsdk.scale.loopback import free_port
    from jamsdk.serve.client import StreamClient

    pytest.importorskip("websockets")
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "jamsdk", "serve", "--ray", cluster.address, "--replicas", "2",
                               "--port", str(port), "--model", str(tiny_batched), "--threads", "1", "--backend",
                               "onnxruntime"], env=cluster.client_env(), cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    lines = []
    try:
        reader = threading.Thread(target=lambda: lines.extend(server.stdout), daemon=True)
        reader.start()
        for _ in range(1200):  # up to 120 s for the replicas to start
            if any(line.startswith("serving") for line in lines) or server.poll() is not None:
                break
            threading.Event().wait(0.1)
        assert any(line.startswith("serving") and "at most 1 per node on 2 nodes" in line for line in lines), lines
        streams = [StreamClient(f"ws://127.0.0.1:{port}/stream", source=pic, timeout=60) for pic in PICTURES]
        try:
            assert len({s.node for s in streams}) == 2 and len({s.replica for s in streams}) == 2
            frame = RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8)
            for stream, pic in zip(streams, PICTURES):
                with Animator(tiny_batched, backend="onnxruntime", threads=1) as anim:
                    anim.set_source(pic)
                    want = anim.run(frame)
                got = stream.animate(frame)
                assert np.abs(got.astype(int) - want.astype(int)).max() <= 2
        finally:
            for s in streams:
                s.close()
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=60) == 0
        reader.join(10)
        assert lines[-1].strip() == "stopped", lines[-5:]
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def test_connection_failures_are_one_line(cluster, work, tiny_batched):
    from jamsdk.errors import ClusterError
    from jamsdk.scale.connect import Auth, check_versions, probe_gcs
    from jamsdk.scale.loopback import free_port

    args = ["batch", "--jobs", work / "jobs.jsonl", "--out-dir", work / "fail", "--model", tiny_batched]
    one_line_error(jamsdk([*args, "--ray", cluster.address], cluster.client_env(token=False), work),
                   f"the Ray cluster at {cluster.address} requires its token")
    one_line_error(jamsdk([*args, "--ray", cluster.client_address], cluster.client_env(token=False), work),
                   f"the Ray cluster at {cluster.client_address} requires its token")
    wrong = {**cluster.client_env(), "RAY_AUTH_TOKEN": "not-the-token"}
    one_line_error(jamsdk([*args, "--ray", cluster.address], wrong, work), "refused the token from RAY_AUTH_TOKEN")
    closed = f"127.0.0.2:{free_port()}"
    one_line_error(jamsdk([*args, "--ray", closed], cluster.client_env(), work),
                   f"cannot reach a Ray cluster at {closed}")
    assert not (work / "fail").exists()

    # A driver on another Ray or Python than the cluster's: no second Ray version can run here, so this
    # reads the real cluster's metadata and compares it with a pretended local version.
    metadata, nodes = probe_gcs(cluster.address, Auth(True, cluster.token, "test"))
    assert len(nodes) == 2 and metadata["ray_version"]
    with pytest.raises(ClusterError, match=rf"version mismatch with the Ray cluster at {cluster.address}: it runs Ray "
                                           rf"{metadata['ray_version']} on Python {metadata['python_version']}, "
                                           r"this process Ray 2.0.0 on Python 3.9.1"):
        check_versions(metadata, cluster.address, ("2.0.0", "3.9.1"))


def test_node_without_jamsdk_is_named(cluster, work, tiny_batched, tmp_path):
    """A third node whose Python has Ray but not jamsdk (a venv that sees this venv's site-packages as a
    plain path, so the editable jamsdk's .pth hook is not run there)."""
    venv = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next(venv.glob("lib/python*/site-packages"))
    (site / "ray-only.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    bare_python = str(venv / "bin" / "python")
    probe = subprocess.run([bare_python, "-c", "import ray\ntry:\n import jamsdk\nexcept ImportError: print('no')"],
                           capture_output=True, text=True, cwd=tmp_path)
    assert probe.stdout.strip() == "no", probe.stderr
    node = cluster.add_node(python=bare_python)
    try:
        proc = jamsdk(["batch", "--jobs", work / "jobs.jsonl", "--out-dir", work / "bare", "--model", tiny_batched,
                       "--ray", cluster.address], cluster.client_env(), work)
        one_line_error(proc, f"jamsdk is not installed on node {cluster.host} (")
        assert f"Python {bare_python}" in proc.stderr and "pip install" in proc.stderr
    finally:
        cluster.remove_node(node)


def test_stop_leaves_no_process(cluster):
    pids = cluster.pids()
    assert len(pids) >= 6  # two nodes: GCS, raylets, agents, workers
    cluster.stop()
    assert [p for p in pids if os.path.exists(f"/proc/{p}") and _state(p) != "Z"] == []


def _state(pid):
    try:
        with open(f"/proc/{pid}/stat") as fh:
            stat = fh.read()
    except OSError:
        return "Z"
    return stat[stat.rfind(")") + 2]
