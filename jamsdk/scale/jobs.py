"""The rows of an offline job: a CSV or JSONL file of (source, driving, out, mode).

CSV: a header line naming the columns ``source,driving,out`` and optionally ``mode``; JSONL: one
object per line with those keys (blank lines and lines starting with ``#`` are skipped).

* ``source``, ``driving``: paths the workers can read; relative ones are taken from the JOBS
  file's folder.
* ``out``: the output video (``.mp4``, ``.avi`` or ``.gif``), relative to ``--out-dir``; it may not
  leave that folder (no absolute paths, no ``..``, no symlinked folder that leads out: checked here
  and again when the file is written, :mod:`jamsdk.scale.outputs`).
* ``mode``: ``relative`` (default), ``standard`` or ``avd``.

A row that is malformed is not fatal: it comes back as a :class:`Row` with ``error`` set and is
reported as failed, like a row whose animation fails.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from jamsdk.errors import InputError
from jamsdk.input_files import read_input
from jamsdk.manifest import MODES
from jamsdk.scale.outputs import contained
from jamsdk.video_write import WRITE_EXTS

COLUMNS = ("source", "driving", "out")


@dataclass(frozen=True)
class Row:
    """One job row, resolved: absolute paths, the mode, and ``error`` when the row itself is bad."""

    index: int          # 1-based line of the row among the file's rows
    source: str
    driving: str
    out: str
    mode: str = "relative"
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_jobs(path: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> list[Row]:
    """Every row of the JOBS file ``path``, resolved against its folder and ``out_dir``.

    Raises:
        InputError: the file is missing, of an unknown kind, has no rows, or a CSV without the columns.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"--jobs {path}: no such file (expected a .csv or .jsonl of source, driving, out, mode)")
    kind = path.suffix.lower()
    if kind not in (".csv", ".jsonl", ".ndjson"):
        raise InputError(f"--jobs {path}: expected a .csv or .jsonl file, got {kind or 'no extension'}")
    try:
        text = read_input(path, "jobs", what="--jobs").decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"--jobs {path}: cannot read it ({exc})") from None
    raw = _csv_rows(text, path) if kind == ".csv" else _jsonl_rows(text)
    if not raw:
        raise InputError(f"--jobs {path}: no rows")
    base, out_root = path.parent.resolve(), Path(out_dir).resolve()
    return [_resolve(i, item, base, out_root) for i, item in enumerate(raw, 1)]


def _csv_rows(text: str, path: Path) -> list[Any]:
    # Joined again with newlines: a quoted field keeps a newline it holds (and the row is refused
    # for it) instead of losing it ("a\nb.mp4" would become "ab.mp4").
    kept = "\n".join(line for line in text.splitlines() if line.strip() and not line.startswith("#"))
    reader = csv.DictReader(io.StringIO(kept))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise InputError(f"--jobs {path}: the CSV header must name {list(COLUMNS)} (and optionally mode); "
                         f"got {header}, missing {missing}")
    return [{(k or "").strip(): (v.strip() if isinstance(v, str) else v) for k, v in row.items()} for row in reader]


def _jsonl_rows(text: str) -> list[Any]:
    rows: list[Any] = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            rows.append(f"not valid JSON ({exc.msg} at column {exc.colno})")
        except RecursionError:  # a row of thousands of nested brackets: that row fails, not the job
            rows.append("not a job row (nested too deeply)")
    return rows


def _resolve(index: int, item: Any, base: Path, out_root: Path) -> Row:
    def bad(msg: str) -> Row:
        text = {k: item.get(k) for k in (*COLUMNS, "mode")} if isinstance(item, dict) else {}
        return Row(index, str(text.get("source") or ""), str(text.get("driving") or ""),
                   str(text.get("out") or ""), str(text.get("mode") or "relative"), f"row {index}: {msg}")

    if not isinstance(item, dict):
        return bad(item if isinstance(item, str) else f"expected an object with {list(COLUMNS)}, got {item!r}")
    missing = [c for c in COLUMNS if not isinstance(item.get(c), str) or not item.get(c)]
    if missing:
        return bad(f"missing or empty {missing} (expected {list(COLUMNS)} and optionally mode)")
    for c in COLUMNS:
        if any(not ch.isprintable() for ch in item[c]):
            return bad(f"{c} {item[c]!r} holds a control character (a newline, tab, ...); refused, not dropped")
    mode = item.get("mode") or "relative"
    if mode not in MODES:
        return bad(f"mode: expected one of {list(MODES)}, got {mode!r}")
    out = PurePosixPath(item["out"].replace("\\", "/"))
    if out.is_absolute() or Path(item["out"]).is_absolute() or ".." in out.parts:
        return bad(f"out {item['out']!r} must be a path inside --out-dir (no absolute path, no ..)")
    if out.suffix.lower() not in WRITE_EXTS:
        return bad(f"out {item['out']!r}: expected a {', '.join(WRITE_EXTS)} file")
    try:
        contained(out_root, out_root / out)
    except InputError as exc:
        return bad(str(exc))
    source, driving = (str(p if p.is_absolute() else base / p) for p in (Path(item["source"]), Path(item["driving"])))
    return Row(index, source, driving, str(out_root / out), mode)
