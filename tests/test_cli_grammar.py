"""The one CLI grammar: named options only, plain help texts, a one-line hint for a stray operand."""

from __future__ import annotations

import pytest

from jamsdk.cli import COMMANDS, build_parser, main

NAMES = [name for name, _ in COMMANDS]


def _help(name: str, capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main([name, "--help"])
    assert exit_info.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("name", NAMES)
def test_help_is_plain_text_with_a_description_and_no_positionals(name, capsys):
    text = _help(name, capsys)
    assert "`" not in text, f"reST markup in jamsdk {name} --help"
    assert "positional arguments" not in text
    usage, _, rest = text.partition("\n\n")
    description = rest.split("\n\n")[0]
    assert description.startswith(f"jamsdk {name}:") and len(description) > len(name) + 20


def test_top_level_help_lists_every_command_plainly(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    assert "`" not in text and all(name in text for name in NAMES)


def test_every_command_has_no_positional_argument():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, p in sub.choices.items():
        positionals = [a.dest for a in p._actions if not a.option_strings]
        assert positionals == [], f"jamsdk {name} has positional arguments {positionals}"


@pytest.mark.parametrize("argv, stray, hint", [
    (["build", "models/x"], "models/x", "this command takes --model DIR"),
    (["bench", "--frames", "3", "models/x"], "models/x", "this command takes --model DIR"),
    (["export", "ck.pt", "models/x"], "ck.pt", "this command takes --checkpoint CKPT --out DIR"),
    (["export", "--out", "o", "ck.pt"], "ck.pt", "this command takes --checkpoint CKPT --out DIR"),
    (["synth", "data/x", "--clips", "2"], "data/x", "this command takes --out DIR"),
    (["convert-mraa", "vox.pth", "--config", "v.yaml"], "vox.pth", "--checkpoint CKPT"),
    (["animate", "--source", "s.png", "pic.png"], "pic.png", "--source IMG --driving"),
    (["info", "extra"], "extra", "this command takes no operands"),
    (["train", "--resume", "runs/x"], "runs/x", "--out DIR"),
    (["eval", "--data", "d", "ck.pt"], "ck.pt", "--checkpoint CKPT"),
    (["demo", "out.mp4"], "out.mp4", "--out OUT"),
])
def test_stray_operand_names_the_flag_in_one_line(argv, stray, hint, capsys):
    # Reported before argparse's own checks (a missing required option would hide the real mistake).
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"jamsdk {argv[0]}: error: unexpected argument {stray!r}: ")
    assert hint in err and err.count("\n") == 1


def test_option_values_are_not_strays(capsys):
    # The values of --model and --frames= are not operands.
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--model", "nowhere", "--frames=2", "--warmup", "1", "--help"])
    assert exit_info.value.code == 0 and "unexpected argument" not in capsys.readouterr().err


@pytest.mark.parametrize("argv, says", [
    # argparse's allow_abbrev took --output for --output-size and --mod for --model: no abbreviations.
    (["animate", "--source", "s.png", "--driving", "d.mp4", "--output", "o.mp4"],
     "unrecognized option '--output'; did you mean --out?"),
    (["bench", "--mod", "nowhere"], "unrecognized option '--mod'; did you mean --mode?"),
    # Said before argparse's "the following arguments are required: --source", which hid the typo.
    (["animate", "--src", "s.png", "--driving", "d.mp4", "--out", "o.mp4"],
     "unrecognized option '--src'; did you mean --source?"),
    (["animate", "--src=s.png", "--driving", "d.mp4", "--out", "o.mp4"],
     "unrecognized option '--src'; did you mean --source?"),
    (["animate", "--source", "s.png", "--driving", "d.mp4", "--out", "o.mp4", "--backend", "onnxrutnime"],
     "argument --backend: invalid choice: 'onnxrutnime' (choose from 'auto', 'tensorrt', 'onnxruntime', "
     "'openvino'); did you mean onnxruntime?"),
    (["animte", "--source", "s.png"], "argument COMMAND: invalid choice: 'animte'"),
    (["--verison"], "unrecognized arguments: --verison; did you mean --version?"),
])
def test_mistypes_get_a_did_you_mean(argv, says, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and says in err and err.count("\n") == 1, err
    if argv[0] == "animte":
        assert err.endswith("; did you mean animate? (see jamsdk --help)\n"), err


@pytest.mark.parametrize("argv", [
    ["animate", "--source", "s.png", "--driving", "d.mp4", "--out", "o.mp4", "--smoothing", "-1", "--help"],
    ["animate", "--out", "o.mp4", "--source=s.png", "--driving", "d.mp4", "--help"],
])
def test_the_option_one_step_away_is_not_a_mistype(argv, capsys):
    # A negative value and an exact --opt=value are no unknown options (their neighbours above are).
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 0 and "unrecognized" not in capsys.readouterr().err


def test_an_unknown_word_far_from_every_option_gets_no_guess(capsys):
    with pytest.raises(SystemExit):
        main(["live", "--driving", "0", "--zzzz"])
    assert "did you mean" not in capsys.readouterr().err


@pytest.mark.parametrize("command", ["info", "doctor"])
def test_a_reader_that_stops_early_gets_no_traceback(command):
    # jamsdk info | head: the pipe closes before jamsdk writes; no BrokenPipeError traceback follows.
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "jamsdk", command], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before the first line
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=120) == 1 and err == "", err


def test_a_reader_that_reads_everything_sees_it_all():
    # The neighbour: the whole of jamsdk info arrives and the status is 0.
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "jamsdk", "info"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stderr == "" and "bundled demo model" in proc.stdout


def test_info_lists_the_bundled_model(capsys):
    from jamsdk.bundled import DEMO_MODEL_DIR

    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert f"bundled demo model: {DEMO_MODEL_DIR}\n" in out
    assert "jam-demo-128" in out and "synthetic" in out and "--model demo" in out


def test_build_refuses_to_write_into_the_bundled_model(capsys):
    assert main(["build"]) == 2
    err = capsys.readouterr().err
    assert "pass --out ENGINE_DIR" in err and err.count("\n") == 1


def test_missing_model_folder_is_one_line(tmp_path, capsys):
    assert main(["bench", "--model", str(tmp_path / "nope"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "nope does not exist" in err and err.count("\n") == 1


# Options that several commands name alike for different things; the walk below checks every other
# shared option has the same choices and default on every command that has it.
DIFFERENT_MEANINGS = {
    "--out": "the file or folder each command writes (demo has a default file name)",
    "--size": "convert-mraa: the model's size; synth: the frame size; export: the export size",
    "--frames": "synth: frames per clip; bench: timed frames",
    "--seed": "synth: the data set's seed (default 0); train: overrides the config's",
    "--plot": "train: draw RUN/loss.png; bench: write box plots to a PNG",
    "--stage": "train: training stage 1 or 2; build: a model stage to build",
}


def _options_by_name() -> dict[str, dict[str, object]]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    found: dict[str, dict[str, object]] = {}
    for name, p in sub.choices.items():
        for action in p._actions:
            for option in action.option_strings:
                if option.startswith("--") and option != "--help":
                    found.setdefault(option, {})[name] = action
    return found


def _grammar(action) -> tuple:
    default = getattr(action, "single_default", action.default)  # a repeatable option's one value
    return (action.nargs == 0, tuple(action.choices) if action.choices else None, default)


def test_the_same_option_has_the_same_choices_and_default_on_every_command():
    shared = {o: per for o, per in _options_by_name().items() if len(per) > 1}
    assert {"--backend", "--precision", "--mode", "--threads", "--model", "--json"} <= set(shared)
    for option, per in shared.items():
        grammars = {name: _grammar(action) for name, action in per.items()}
        if option in DIFFERENT_MEANINGS:
            assert len(set(grammars.values())) > 1, f"{option} is alike everywhere now: drop it from DIFFERENT_MEANINGS"
            continue
        assert len(set(grammars.values())) == 1, f"{option} differs between commands: {grammars}"


def test_shared_choices_are_the_runtime_s():
    from jamsdk.commands._options import BACKENDS, MODES
    from jamsdk.manifest import MODES as MANIFEST_MODES
    from jamsdk.runtime.backends import BACKENDS as RUNTIME_BACKENDS

    assert set(BACKENDS) == {"auto", *RUNTIME_BACKENDS}  # both read jamsdk.backend_registry's rows
    assert set(MODES) == set(MANIFEST_MODES)
    per = _options_by_name()
    for option in ("--backend", "--precision"):
        assert {"animate", "demo", "bench", "batch", "serve", "live"} <= set(per[option]), option
    assert "int8" in per["--precision"]["live"].choices


@pytest.mark.parametrize("argv, says", [
    (["animate", "--source", "s.png"], "the following arguments are required: --driving, --out"),
    (["animate", "--source", "s.png", "--driving", "d.mp4", "--out", "o.mp4", "--mode", "sideways"],
     "argument --mode: invalid choice: 'sideways'"),
    (["bench", "--frames", "many"], "argument --frames: invalid int value: 'many'"),
    (["export", "--checkpoint", "c.pt", "--out", "m", "--precision", "both"],
     "--precision both is now spelled --precision fp32 --precision fp16"),
    (["export", "--checkpoint", "c.pt", "--out", "m", "--precision", "all"],
     "--precision all is now spelled --precision fp32 --precision fp16 --precision int8"),
    (["eval", "--checkpoint", "c.pt", "--data", "d", "--mode", "all"],
     "--mode all is now spelled --mode relative --mode standard --mode avd"),
    (["eval", "--backend", "cuda"], "argument --backend: invalid choice: 'cuda'"),
    (["live", "--driving", "0", "--nope"], "unrecognized option '--nope' (see jamsdk live --help)"),
])
def test_argparse_errors_are_one_line(argv, says, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"jamsdk {argv[0]}: error: ") and says in err, err
    assert err.count("\n") == 1 and "usage:" not in err, err


def test_top_level_argparse_error_is_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["animat"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.startswith("jamsdk: error: ") and err.count("\n") == 1


@pytest.mark.parametrize("argv, says", [
    (["eval", "--checkpoint", "c.pt", "--data", "d", "--backend", "onnxruntime"], "--backend applies to"),
    (["eval", "--checkpoint", "c.pt", "--data", "d", "--mode", "avd"], "--mode applies to --animation"),
    (["eval", "--animation", "d", "--checkpoint", "c.pt", "--backend", "tensorrt"], "--backend applies to"),
])
def test_an_option_that_cannot_apply_is_one_line(argv, says, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert says in err and err.count("\n") == 1, err


@pytest.mark.parametrize("values, graphs", [
    (["auto"], "both"), (["fp32"], "fp32"), (["fp16"], "fp16"), (["int8"], "int8"),
    (["fp16", "int8"], "all"), (["auto", "int8"], "all"), (["fp32", "fp16"], "both"),
])
def test_export_precision_values_name_the_graph_set(values, graphs):
    from jamsdk.commands.export import graph_set

    parser = build_parser()
    argv = ["export", "--checkpoint", "c.pt", "--out", "m"]
    for v in values:
        argv += ["--precision", v]
    args = parser.parse_args(argv if values != ["auto"] else argv[:5])
    assert graph_set(args.precision) == graphs


def test_quiet_commands_keep_jamsdk_warnings_and_drop_the_libraries():
    import warnings

    from jamsdk.cli import _notes_as_lines
    from jamsdk.train.datasets import DataWarning

    shown = []
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = lambda message, *rest: shown.append(str(message))  # what Python would print
        _notes_as_lines("eval", quiet=True)
        warnings.warn("a library's own complaint", UserWarning)
        warnings.warn("data/x: skipping clip7: unreadable", DataWarning)
    assert shown == ["data/x: skipping clip7: unreadable"]


@pytest.mark.parametrize("command", [["batch", "--jobs", "j.csv", "--out-dir", "o"], ["serve"]])
def test_stream_batch_commands_take_every_precision(command):
    """batch and serve run StreamBatch, which takes INT8 at every batch size (it used to refuse int8)."""
    parser = build_parser()
    for value in ("auto", "fp32", "fp16", "int8"):
        assert parser.parse_args(command + ["--precision", value]).precision == value
    assert parser.parse_args(command).precision == "auto"


def test_max_batch_takes_a_size_auto_or_tune_and_nothing_next_to_them():
    import argparse

    from jamsdk.commands._options import max_batch_value

    assert [max_batch_value(t) for t in ("auto", "tune", "1", "8")] == ["auto", "tune", 1, 8]
    for bad in ("0", "-1", "Auto", "tune ", "all", "1.5", ""):
        with pytest.raises(argparse.ArgumentTypeError, match=f"expected an integer ≥ 1, auto or tune, got {bad!r}"):
            max_batch_value(bad)
