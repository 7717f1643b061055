"""Loss curves from log.csv (jamsdk.train.plot), without training a model: what is read and what is drawn."""

from __future__ import annotations

import cv2
import pytest

from jamsdk.errors import InputError
from jamsdk.train.plot import plot_log, read_log

LOG = """step,epoch,lr,perceptual,equivariance_shift,total,sec_per_step
1,0,0.0002,10.0,0.5,10.5,1.2
2,0,0.0002,5.0,nan,5.5,1.1
3,0,0.0002,1.0,0,1.0,1.0
x,0,0.0002,1.0,1.0,1.0,1.0
"""


def test_losses_are_read_and_drawn(tmp_path):
    log = tmp_path / "log.csv"
    log.write_text(LOG)
    series = read_log(log)
    # not-losses (epoch, lr, s/step) left out; non-finite and non-positive values and bad steps skipped
    assert series == {"perceptual": [(1, 10.0), (2, 5.0), (3, 1.0)], "equivariance_shift": [(1, 0.5)],
                      "total": [(1, 10.5), (2, 5.5), (3, 1.0)]}
    png = plot_log(log, tmp_path / "loss.png", size=(480, 270))
    image = cv2.imread(str(png))
    assert image.shape == (270, 480, 3) and (image < 250).any()  # curves and text on the white canvas
    assert not list(tmp_path.glob(".*tmp*"))  # written atomically


def test_a_log_without_steps_or_losses_is_one_clear_error(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_log(tmp_path / "absent.csv")
    (tmp_path / "bad.csv").write_text("epoch,total\n0,1.0\n")
    with pytest.raises(InputError, match="expected a CSV with a 'step' column"):
        read_log(tmp_path / "bad.csv")
    (tmp_path / "empty.csv").write_text("step,total\n1,0\n")
    with pytest.raises(InputError, match="no loss values to plot yet"):
        plot_log(tmp_path / "empty.csv", tmp_path / "loss.png")
