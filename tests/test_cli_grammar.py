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


def test_option_values_and_abbreviations_are_not_strays(capsys):
    # "--mod" abbreviates --model; its value and --frames' value are not operands.
    with pytest.raises(SystemExit):
        main(["bench", "--mod", "nowhere", "--frames=2", "--warmup", "1", "--help"])
    assert "unexpected argument" not in capsys.readouterr().err


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
