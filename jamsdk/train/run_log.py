"""A training run's ``log.csv``: appended as the run goes, cut back to the checkpoint on resume."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any


class CsvLog:
    """``log.csv``: one row per ``log_every`` steps; on resume, rows past the checkpoint are dropped.

    Rows are appended and flushed (a log, not an artefact); a torn last line after a SIGKILL is
    dropped on resume, where the file is rewritten atomically up to the checkpoint's step.
    """

    def __init__(self, path: Path, resume_step: int | None):
        from jamsdk._atomic import write_bytes

        self.path = path
        self.rows: list[dict[str, str]] = []
        self.fields: list[str] = []
        if resume_step is not None and path.is_file():
            with open(path, newline="", encoding="utf-8") as fh:
                reader = csv.DictReader(fh)
                self.fields = list(reader.fieldnames or [])
                for row in reader:
                    try:
                        if None not in row.values() and int(row["step"]) <= resume_step:
                            self.rows.append(row)
                    except (KeyError, ValueError):
                        continue  # a torn line
        if self.fields:
            write_bytes(path, self._render().encode("utf-8"))
        elif path.exists():
            path.unlink()

    def _render(self) -> str:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=self.fields, restval="")
        writer.writeheader()
        writer.writerows(self.rows)
        return buf.getvalue()

    def write(self, row: dict[str, Any]) -> None:
        from jamsdk._atomic import write_bytes

        row = {k: (f"{v:.6g}" if isinstance(v, float) else str(v)) for k, v in row.items()}
        self.rows.append(row)
        new = [k for k in row if k not in self.fields]
        if new:  # header changes: rewrite the whole (small) file
            self.fields += new
            write_bytes(self.path, self._render().encode("utf-8"))
            return
        with open(self.path, "a", newline="", encoding="utf-8") as fh:
            csv.DictWriter(fh, fieldnames=self.fields, restval="").writerow(row)
            fh.flush()
