"""benchmarks/serve_load.py without Ray: its options and the verdicts of its report."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import serve_load  # noqa: E402


def _phase(fps, attack, hostile=None):
    return {"attack": attack, "seconds": 20.0, "frames": int(fps * 20), "frames_per_s": fps, "p50_ms": 160.0,
            "p99_ms": 200.0, "good_errors": 0, "error_examples": [], "replica_rss_peak_mb": 400.0,
            "proxy_rss_peak_mb": 200.0, "hostile": hostile or {}, "loadavg_1m": [1.0, 1.5],
            "cpu_cores_used": {"replica": 1.0, "proxy": 0.1, "good_clients": 0.03, "hostile_client": 0.01},
            "frames_per_replica_cpu_s": fps}


def _result(ratios, guard=True):
    rounds = [{"alone": _phase(25.0, False), "attack": _phase(25.0 * r, True, {"flood_frame": 400, "connect_failed": 40,
                                                                                "replies_frames": 3}),
               "ratio": r, "per_cpu_ratio": r} for r in ratios]
    return {"machine": "a CPU; flags: avx2", "jamsdk": "/x/jamsdk", "model": "demo", "attacks": list(serve_load.ATTACKS),
            "pace": "flood", "replica_nice": 15, "streams": 4, "seconds": 20.0, "threads": 1, "rounds": rounds,
            "retry_pause": 0.5, "hostile_address": "127.0.0.2", "replica_code": "hardened",
            "replica_health": {"dropped": 5, "refused": 0, "policy_closed": 3, "penalized": 0, "proxy_guard": guard}}


def test_report_says_met_only_when_every_round_meets_the_target():
    met = serve_load.render(_result([0.97, 1.01]))
    assert "per round: 0.97, 1.01 (target ≥ 0.7: met)" in met
    assert "guard in Serve's proxy: on, hostile client from 127.0.0.2" in met
    assert "streams closed for breaking the message limits 3" in met
    assert "| 1 | attack | 24.25 |" in met and "| 400 |" in met  # sent counts messages, not refusals or replies
    not_met = serve_load.render(_result([0.97, 0.69], guard=False))
    assert "(target ≥ 0.7: NOT met)" in not_met and "guard in Serve's proxy: off" in not_met


def test_options_are_checked():
    args = serve_load.parse_args(["--retry-pause", "0", "--hostile-address", "127.0.0.3", "--no-proxy-guard"])
    assert args.retry_pause == 0 and args.hostile_address == "127.0.0.3" and args.no_proxy_guard
    for bad in (["--retry-pause", "-1"], ["--attacks", "nothing"], ["--streams", "0"]):
        with pytest.raises(SystemExit):
            serve_load.parse_args(bad)


def test_the_heavy_attack_two_clients_and_their_report():
    args = serve_load.parse_args(["--attacks", "heavy", "--hostile-clients", "2", "--pace", "lockstep"])
    assert args.attacks == ("heavy",) and args.hostile_clients == 2
    assert serve_load.parse_args([]).attacks == serve_load.DEFAULT_ATTACKS  # heavy is asked for, not default
    with pytest.raises(SystemExit):
        serve_load.parse_args(["--hostile-clients", "0"])
    res = _result([0.8])
    res["hostile_clients"] = 2
    res["rounds"][0]["attack"]["cpu_cores_used"] = {"replica": 1.0, "proxy": 0.1, "good_clients": 0.03,
                                                    "hostile_client": 0.02, "hostile_client2": 0.03}
    res["replica_health"]["paced_s"] = 12.5
    text = serve_load.render(res)
    assert "2 hostile client(s) (flood" in text and "| 1.0 / 0.1 / 0.03 / 0.02 / 0.03 |" in text
    assert "waited for their decoding budget 12.5" in text


def test_the_heavy_frame_is_the_probes():
    import cv2
    import numpy as np
    from _load import gradient_png

    png = gradient_png(4096, 4096)
    assert 50_000 < len(png) < 70_000  # 58,812 bytes with OpenCV 5.1's zlib
    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert img.shape == (4096, 4096, 3) and img[0, -1, 2] == 254
