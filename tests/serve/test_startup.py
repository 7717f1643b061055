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


def test_failed_deployment_says_why_the_replicas_did_not_start(tiny_batched, ray_local):
    # The folder has FP32 graphs only: every replica's StreamBatch refuses precision fp16. What jamsdk
    # serve prints is this error's message, as one line (the CLI prints every JamError so).
    from ray import serve

    from jamsdk.errors import EngineError
    from jamsdk.serve import app
    from jamsdk.serve.startup import start

    application = app.build_app(str(tiny_batched), backend="onnxruntime", precision="fp16", threads=1,
                                cpus_per_replica=0.5)
    with pytest.raises(EngineError) as failed:
        start(application, "127.0.0.1", free_port())
    message = str(failed.value)
    assert message.startswith("the service did not start: deployment AnimationService: "), message
    assert "has no 'fp16' graph" in message and "export with --precision fp16" in message
    assert "\n" not in message
    serve.delete("jamsdk")


def test_cause_of_reads_the_last_exception_line():
    from jamsdk.serve.startup import cause_of

    text = ("The deployment failed to start 3 times in a row. Error:\n\x1b[36mray::ServeReplica\x1b[39m\n"
            "Traceback (most recent call last):\n  File \"x.py\", line 1, in <module>\n"
            "jamsdk.errors.ManifestError: /m: no engines built yet\n")
    assert cause_of(text) == "/m: no engines built yet"
    assert cause_of("Traceback ...\nValueError: bad value") == "ValueError: bad value"
    assert cause_of("RuntimeError: Failed to bind to address '127.0.0.1:8000'.") == \
        "RuntimeError: Failed to bind to address '127.0.0.1:8000'."
