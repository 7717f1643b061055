"""`jamsdk serve` start-up failures are one line with the real cause, exit 2 (no Ray traceback)."""

import socket

import pytest

from jamsdk.cli import main

pytest.importorskip("ray.serve")
pytest.importorskip("fastapi")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("jamsdk serve: error: ")]


def test_port_in_use_is_one_line_before_ray_starts(capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert _error_lines(err) == [f"jamsdk serve: error: --port {port}: already in use on 127.0.0.1 (choose another "
                                 "port)"], err
    assert "Traceback" not in err


def test_failed_deployment_says_why_the_replicas_did_not_start(tiny_batched, ray_local, capsys):
    # The folder has FP32 graphs only: every replica's StreamBatch refuses --precision fp16.
    port = free_port()
    assert main(["serve", "--model", str(tiny_batched), "--precision", "fp16", "--threads", "1",
                 "--port", str(port)]) == 2
    err = capsys.readouterr().err
    lines = _error_lines(err)
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("jamsdk serve: error: the service did not start: deployment AnimationService: ")
    assert "has no 'fp16' graph" in lines[0] and "export with --precision fp16" in lines[0]
    from ray import serve

    assert "jamsdk" not in serve.status().applications  # the failed application is not left behind


def test_cause_of_reads_the_last_exception_line():
    from jamsdk.serve.startup import cause_of

    text = ("The deployment failed to start 3 times in a row. Error:\n\x1b[36mray::ServeReplica\x1b[39m\n"
            "Traceback (most recent call last):\n  File \"x.py\", line 1, in <module>\n"
            "jamsdk.manifest.ManifestError: /m: no engines built yet\n")
    assert cause_of(text) == "/m: no engines built yet"
    assert cause_of("Traceback ...\nValueError: bad value") == "ValueError: bad value"
    assert cause_of("RuntimeError: Failed to bind to address '127.0.0.1:8000'.") == \
        "RuntimeError: Failed to bind to address '127.0.0.1:8000'."
