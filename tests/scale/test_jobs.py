"""Reading JOBS files (no Ray needed)."""

import json
from pathlib import Path

import pytest

from jamsdk.errors import InputError
from jamsdk.scale.jobs import read_jobs


def test_csv_rows_resolve_against_the_jobs_folder(tmp_path):
    jobs = tmp_path / "jobs.csv"
    jobs.write_text("source,driving,out,mode\n"
                    "a.png,clips/d.mp4,x/out1.mp4,\n"
                    "/abs/b.png,d.mp4,out2.gif,standard\n"
                    "# a comment\n"
                    "c.png,d.mp4,../escape.mp4,relative\n"
                    "c.png,d.mp4,out3.mov,relative\n"
                    "c.png,d.mp4,out4.mp4,sideways\n")
    rows = read_jobs(jobs, tmp_path / "outs")
    assert [r.index for r in rows] == [1, 2, 3, 4, 5]
    assert rows[0].source == str(tmp_path / "a.png") and rows[0].driving == str(tmp_path / "clips" / "d.mp4")
    assert rows[0].out == str(tmp_path / "outs" / "x" / "out1.mp4") and rows[0].mode == "relative"
    assert rows[1].source == "/abs/b.png" and rows[1].mode == "standard" and not rows[1].error
    assert "inside --out-dir" in rows[2].error
    assert "expected a .mp4, .avi, .gif file" in rows[3].error or ".mp4" in rows[3].error
    assert "mode: expected one of" in rows[4].error


def test_jsonl_bad_lines_are_failed_rows_not_fatal(tmp_path):
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text('{"source": "a.png", "driving": "d.mp4", "out": "o.mp4"}\n\n{broken\n'
                    '{"source": "a.png", "out": "p.mp4"}\n[1, 2]\n')
    rows = read_jobs(jobs, tmp_path)
    assert not rows[0].error
    assert rows[1].error.startswith("row 2: not valid JSON")
    assert "missing or empty ['driving']" in rows[2].error
    assert "expected an object" in rows[3].error


def test_a_deeply_nested_jsonl_row_fails_alone(tmp_path):
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text("[" * 100_000 + "]" * 100_000 + '\n{"source": "a.png", "driving": "d.mp4", "out": "o.mp4"}\n')
    rows = read_jobs(jobs, tmp_path)
    assert "nested too deeply" in rows[0].error and not rows[1].error


@pytest.mark.parametrize("name, text, match", [
    ("jobs.txt", "x", "expected a .csv or .jsonl"),
    ("jobs.csv", "source,out\na,b\n", r"missing \['driving'\]"),
    ("jobs.jsonl", "\n# nothing\n", "no rows"),
])
def test_unusable_jobs_files(tmp_path, name, text, match):
    (tmp_path / name).write_text(text)
    with pytest.raises(InputError, match=match):
        read_jobs(tmp_path / name, tmp_path)
    with pytest.raises(InputError, match="no such file"):
        read_jobs(tmp_path / "absent.csv", tmp_path)


def test_absolute_out_paths_are_refused(tmp_path):
    """An absolute ``out`` would land outside --out-dir (``out_dir / "/x"`` is ``/x``): the row fails."""
    elsewhere = tmp_path / "elsewhere" / "x.mp4"
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text(json.dumps({"source": "s.png", "driving": "d.mp4", "out": str(elsewhere)}) + "\n"
                    + json.dumps({"source": "s.png", "driving": "d.mp4", "out": "ok/y.mp4"}) + "\n")
    rows = read_jobs(jobs, tmp_path / "outs")
    assert "must be a path inside --out-dir (no absolute path" in rows[0].error
    assert rows[1].error == "" and Path(rows[1].out) == (tmp_path / "outs" / "ok" / "y.mp4").resolve()
