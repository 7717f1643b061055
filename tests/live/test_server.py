"""``jamsdk live`` end to end on loopback: the page, the MJPEG stream, stats, controls, recording,
a clean stop on SIGINT/SIGTERM, and one-line errors for bad input."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import subprocess
import sys
import urllib.parse
import urllib.request

import cv2
import numpy as np
import pytest
from live_helpers import ASSETS, DRIVING, ROOT, free_port, live_process, wait_for




def _get(url: str, timeout: float = 10.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read()


def _stats(base: str) -> dict:
    return json.loads(_get(base + "stats.json"))


def _post(base: str, action: str) -> dict:
    req = urllib.request.Request(base + "control/" + action, method="POST", data=b"")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def read_mjpeg(base: str, n: int, timeout: float = 60.0) -> list[np.ndarray]:
    """Read ``n`` JPEG parts of /stream.mjpg with http.client and decode them (RGB)."""
    u = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        conn.request("GET", "/stream.mjpg")
        resp = conn.getresponse()
        assert resp.status == 200
        ctype = resp.getheader("Content-Type")
        assert ctype.startswith("multipart/x-mixed-replace; boundary=")
        boundary = ctype.split("boundary=", 1)[1].encode()
        frames = []
        while len(frames) < n:
            line = resp.fp.readline()
            if not line:
                raise AssertionError(f"stream ended after {len(frames)} frames")
            if line.strip() != b"--" + boundary:
                continue
            headers = {}
            while (h := resp.fp.readline().strip()):
                k, v = h.decode().split(":", 1)
                headers[k.strip().lower()] = v.strip()
            assert headers["content-type"] == "image/jpeg"
            data = resp.fp.read(int(headers["content-length"]))
            img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            assert img is not None, "a part is not a decodable JPEG"
            frames.append(img[:, :, ::-1])
        return frames
    finally:
        conn.close()


def test_live_serves_page_stream_stats_controls_and_records(tmp_path):
    port = free_port()
    out = tmp_path / "rec.avi"
    with live_process("--driving", str(DRIVING), "--port", str(port), "--layout", "side-by-side", "--out",
                      str(out), "--threads", "1", "--max-fps", "20") as live:
        base = live.url
        assert base == f"http://127.0.0.1:{port}/"
        page = _get(base).decode()
        assert "/stream.mjpg" in page and "/stats.json" in page and "jamsdk live" in page
        frames = read_mjpeg(base, 5)
        assert len(frames) == 5
        for f in frames:
            assert f.shape == (256, 768, 3)  # 128² demo model shown at 256², side by side
            assert f.std() > 10  # a picture, not a blank frame
        stats = wait_for(lambda: (s := _stats(base)) and s["frames"] >= 3 and s["fps"] > 0 and s)
        for stage in ("region_predictor", "dense_motion", "generator", "frame"):
            assert stats["ms"][stage] > 0
        assert stats["layout"] == "side-by-side" and stats["regions"] is False
        # The page names the model and says what the bundled demo model is.
        assert stats["model"] == "jam-demo-128" and "synthetic cartoon figures only" in stats["note"]
        assert 'id="model"' in page and 'id="note"' in page
        # controls: the preview changes; the recording keeps the command line's view
        assert _post(base, "layout") == {"queued": "layout"}
        _post(base, "regions")
        wait_for(lambda: _stats(base)["layout"] == "result")
        assert read_mjpeg(base, 2)[-1].shape == (256, 256, 3)
        assert _stats(base)["regions"] is True
        _post(base, "search")
        wait_for(lambda: "best of the last" in _stats(base)["message"])
        _post(base, "reset")
        wait_for(lambda: "(reset)" in _stats(base)["message"])
        with pytest.raises(urllib.error.HTTPError) as err:
            _post(base, "explode")
        assert err.value.code == 404
        assert live.stop(signal.SIGINT) == 0, live.stderr
    assert any("stopped after" in line for line in live.stdout), live.stdout
    assert "Traceback" not in live.stderr
    cap = cv2.VideoCapture(str(out))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    ok, first = cap.read()
    cap.release()
    assert ok and first.shape == (256, 768, 3) and n >= 5
    assert not list(tmp_path.glob(".rec.avi.tmp-*"))  # the temporary file was renamed
    with pytest.raises(OSError):  # the server was closed: nothing listens on the port any more
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_sigterm_stops_cleanly_and_finalises_the_recording(tmp_path):
    out = tmp_path / "rec.mp4"
    with live_process("--driving", str(DRIVING), "--port", "0", "--out", str(out), "--threads", "1") as live:
        wait_for(lambda: _stats(live.url)["frames"] >= 3)
        assert live.stop(signal.SIGTERM) == 0, live.stderr
    assert any(f"wrote {out}" in line for line in live.stdout), live.stdout
    assert out.stat().st_size > 0


def _cli(*args: str, timeout: float = 120.0) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jamsdk", "live", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def _one_line_error(r: subprocess.CompletedProcess, *needles: str) -> None:
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    lines = [line for line in r.stderr.strip().splitlines() if "note: " not in line]
    assert len(lines) == 1, r.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_bad_inputs_get_one_line_and_status_2(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not a video")
    fake_png = tmp_path / "face.png"
    fake_png.write_text("not a picture")
    _one_line_error(_cli("--driving", "7", "--port", "0"), "camera 7 does not open")
    _one_line_error(_cli("--driving", str(text), "--port", "0"), "unsupported file type")
    _one_line_error(_cli("--driving", str(ASSETS / "example_source.png"), "--port", "0"), "still picture")
    _one_line_error(_cli("--driving", str(DRIVING), "--source", str(fake_png), "--port", "0"), "cannot decode")
    _one_line_error(_cli("--driving", str(DRIVING), "--max-fps", "0"), "--max-fps: expected a number > 0")
    _one_line_error(_cli("--driving", str(DRIVING), "--max-fps", "-3"), "--max-fps")
    _one_line_error(_cli("--driving", str(DRIVING), "--out", str(tmp_path / "x.webm")), "--out")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        _one_line_error(_cli("--driving", str(DRIVING), "--port", str(port)), f"--port {port}: already in use")
