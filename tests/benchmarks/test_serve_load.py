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
