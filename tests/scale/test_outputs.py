"""Where `jamsdk batch` writes (inside --out-dir, symlinks resolved) and what it cleans up (no Ray needed)."""

import json
import os
import subprocess
import sys
import time

import pytest

from jamsdk.errors import InputError
from jamsdk.scale.jobs import read_jobs
from jamsdk.scale.outputs import clean_stale_temps, clean_stale_workdirs, write_output


def jobs_file(tmp_path, outs):
    path = tmp_path / "jobs.jsonl"
    path.write_text("".join(json.dumps({"source": "a.png", "driving": "d.mp4", "out": o}) + "\n" for o in outs))
    return path


def test_rows_through_a_symlink_leading_out_are_refused(tmp_path):
    outside, out_dir = tmp_path / "outside", tmp_path / "outs"
    outside.mkdir()
    (out_dir / "inner").mkdir(parents=True)
    (out_dir / "away").symlink_to(outside, target_is_directory=True)
    (out_dir / "here").symlink_to(out_dir / "inner", target_is_directory=True)
    (out_dir / "file.mp4").symlink_to(outside / "victim.mp4")
    rows = read_jobs(jobs_file(tmp_path, ["away/x.mp4", "away/deeper/y.mp4", "here/z.mp4", "plain.mp4",
                                          "file.mp4", str(outside / "abs.mp4")]), out_dir)
    assert "leads outside --out-dir" in rows[0].error and rows[0].index == 1
    assert "leads outside --out-dir" in rows[1].error
    assert not rows[2].error and not rows[3].error  # a symlink that stays inside is fine
    assert "leads outside --out-dir" in rows[4].error
    assert "must be a path inside --out-dir (no absolute path" in rows[5].error
    assert list(outside.iterdir()) == []


def test_a_sibling_folder_sharing_the_prefix_is_outside(tmp_path):
    """`outs` and `outs-evil`: a string-prefix containment check would take the sibling for inside
    (the test above catches that slip only because "outside" happens to start with "outs")."""
    out_dir, evil = tmp_path / "outs", tmp_path / "outs-evil"
    out_dir.mkdir()
    evil.mkdir()
    (out_dir / "link").symlink_to(evil, target_is_directory=True)
    rows = read_jobs(jobs_file(tmp_path, ["link/x.mp4"]), out_dir)
    assert "leads outside --out-dir" in rows[0].error
    with pytest.raises(InputError, match="outside --out-dir|not inside --out-dir"):
        write_output(out_dir, out_dir / "link" / "x.mp4", b"video")
    assert list(evil.iterdir()) == []


def test_a_control_character_in_a_row_is_refused_not_dropped(tmp_path):
    """The probe's B3: a quoted newline in a CSV `out` was silently dropped ("a\\nb.mp4" → "ab.mp4")."""
    jobs = tmp_path / "jobs.csv"
    jobs.write_text('source,driving,out\na.png,d.mp4,"a\nb.mp4"\na.png,d.mp4,ok.mp4\na.png,"d\tx.mp4",t.mp4\n')
    rows = read_jobs(jobs, tmp_path / "outs")
    assert len(rows) == 3
    assert rows[0].error == ("row 1: out 'a\\nb.mp4' holds a control character (a newline, tab, ...); refused, "
                             "not dropped")
    assert not rows[1].error and rows[1].out.endswith("ok.mp4")
    assert "driving 'd\\tx.mp4' holds a control character" in rows[2].error


def test_write_time_check_catches_a_symlink_swapped_in_after_reading(tmp_path):
    outside, out_dir = tmp_path / "outside", tmp_path / "outs"
    outside.mkdir()
    rows = read_jobs(jobs_file(tmp_path, ["sub/deep/x.mp4", "ok/y.mp4"]), out_dir)
    assert not rows[0].error
    out_dir.mkdir()
    (out_dir / "sub").symlink_to(outside, target_is_directory=True)  # planted between planning and writing
    with pytest.raises(InputError, match="leads outside --out-dir"):
        write_output(out_dir, tmp_path / "outs" / "sub" / "deep" / "x.mp4", b"video")
    assert list(outside.iterdir()) == []  # not even the folder "deep" was made out there
    write_output(out_dir, out_dir / "ok" / "y.mp4", b"video")
    assert (out_dir / "ok" / "y.mp4").read_bytes() == b"video"
    with pytest.raises(InputError, match="not inside --out-dir"):
        write_output(out_dir, tmp_path / "elsewhere.mp4", b"video")


def test_stale_temporary_files_of_the_rows_outputs_only(tmp_path):
    out = tmp_path / "row1.mp4"
    old = time.time() - 3600
    stale = tmp_path / ".row1.mp4.tmp-ab_c1234.mp4"       # what jamsdk._atomic names a temporary of row1.mp4
    fresh = tmp_path / ".row1.mp4.tmp-zzzz9999.mp4"       # a concurrent run's file in flight
    other_row = tmp_path / ".row2.mp4.tmp-ab_c1234.mp4"   # not an output of this job
    other_suffix = tmp_path / ".row1.mp4.tmp-ab_c1234.gif"
    short = tmp_path / ".row1.mp4.tmp-abc.mp4"
    user = tmp_path / "row1.mp4.tmp-ab_c1234.mp4"         # no leading dot: not jamsdk's name
    for f in (stale, fresh, other_row, other_suffix, short, user):
        f.write_bytes(b"x")
        if f is not fresh:
            os.utime(f, (old, old))
    link = tmp_path / ".row1.mp4.tmp-linklink.mp4"
    link.symlink_to(user)
    os.utime(link, (old, old), follow_symlinks=False)
    assert clean_stale_temps([out]) == [stale]
    assert not stale.exists()
    assert all(f.exists() for f in (fresh, other_row, other_suffix, short, user)) and link.is_symlink()


def test_stale_scratch_folders_of_dead_actors_only(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        gone = tmp_path / f"jamsdk-batch-{dead.pid}-abcd_123"
        kept = tmp_path / f"jamsdk-batch-{alive.pid}-abcd_123"
        foreign = tmp_path / f"jamsdk-batch-{dead.pid}-mine"
        for d in (gone, kept, foreign):
            d.mkdir()
            (d / "f").write_bytes(b"x")
        assert clean_stale_workdirs(str(tmp_path)) == [gone]
        assert kept.exists() and foreign.exists() and not gone.exists()
    finally:
        alive.kill()
        alive.wait()
