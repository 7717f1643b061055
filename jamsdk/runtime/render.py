"""Animate a picture with a driving video (or camera) into a video file: the ``animate`` command's core."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from jamsdk.errors import InputError
from jamsdk.pictures import read_image
from jamsdk.runtime.animator import Animator
from jamsdk.runtime.frames import crop_note, pad_to_square, unpad
from jamsdk.runtime.progress import progress
from jamsdk.video import VIDEO_EXTS, ShortVideoWarning, iter_frames, probe
from jamsdk.video_write import WRITE_EXTS, write_video

DEFAULT_FPS = 25.0
FITS = ("crop", "pad")


@dataclass(frozen=True)
class RenderResult:
    """What :func:`render_video` wrote and how fast the Animator ran."""

    out: Path
    frames: int
    fps: float
    backend: str
    stats: dict
    size: tuple[int, int] = (0, 0)  # (width, height) of the written frames
    model: str = ""
    #: why the output is this size, where a larger one was there for the asking (or "")
    size_note: str = ""

    def to_json(self) -> dict:
        """A JSON-ready summary (``--json``)."""
        return {"out": str(self.out), "frames": self.frames, "fps": self.fps, "size": list(self.size),
                "backend": self.backend, "model": self.model, "stats": self.stats}


def _is_camera(driving: str | int) -> bool:
    return isinstance(driving, int) or (isinstance(driving, str) and driving.isdigit())


def render_video(model_dir: str | os.PathLike[str], source: str | os.PathLike[str], driving: str | int,
                 out: str | os.PathLike[str], *, mode: str = "relative", backend: str = "auto",
                 fps: float | None = None, max_frames: int | None = None, precision: str = "fp32",
                 providers: str | Sequence[str] | None = None, threads: int | None = None,
                 output_size: str | int = "model", fit: str = "crop", show_progress: bool = True,
                 notify: Callable[[str], None] | None = None, layout: str = "result",
                 show_regions: bool = False, best_frame: bool = False, smoothing: float = 0.0,
                 allow_short: bool = False) -> RenderResult:
    """Animate ``source`` by ``driving`` and write ``out`` (``.mp4``, ``.avi`` or ``.gif``) atomically.

    Args:
        model_dir: exported model folder.
        source: picture to animate.
        driving: video file, GIF, frame folder, or a camera index (``0`` or ``"0"``). A camera runs
            until ``max_frames`` or Ctrl-C; the frames so far are then written.
        out: output file; it appears only complete (a bad input or crash leaves no partial file and
            an existing ``out`` untouched). A missing folder is created (like ``mkdir -p``).
        mode, backend, precision, providers, threads, output_size: see
            :class:`~jamsdk.runtime.animator.Animator`.
        fps: output frame rate (default: the driving video's, else 25).
        max_frames: stop after this many driving frames.
        fit: ``"crop"`` (default): the centred square of each picture and frame is animated; ``"pad"``:
            non-square pictures and frames are padded to a square with their border's median colour
            first, so nothing is cut, and the output is cut back to the source picture's aspect
            ratio (the square's side per ``output_size``, then the padding removed).
        show_progress: progress bar on stderr.
        notify: called with one line when the source or the driving frames are not square (what
            the centre crop cuts, or that they are padded).
        layout, show_regions: the view written (:func:`jamsdk.runtime.views.compose`):
            ``"result"`` or ``"side-by-side"`` (source | driving | result, the squares the model
            saw: padded ones with ``fit="pad"``), region ellipses on.
        best_frame: make the driving frame whose regions best match the source's the relative
            mode's reference (:meth:`Animator.find_reference`; reads the driving video twice).
        smoothing: :class:`~jamsdk.runtime.animator.Animator`'s driving-region smoothing.
        allow_short: a driving video that stops decoding before its declared frame count is written
            as far as it goes (``notify`` says so) instead of being refused
            (:func:`jamsdk.video.iter_frames`).
    """
    from jamsdk.runtime.views import LAYOUTS, RegionGeometry, compose

    out = Path(out)
    if out.suffix.lower() not in WRITE_EXTS:
        raise InputError(f"--out {out}: expected a {', '.join(WRITE_EXTS)} file")
    if max_frames is not None and max_frames < 1:
        raise InputError(f"max_frames: expected ≥ 1, got {max_frames}")
    if fps is not None and not (np.isfinite(fps) and fps > 0):
        raise InputError(f"fps: expected > 0, got {fps}")
    if fit not in FITS:
        raise InputError(f"fit: expected one of {FITS}, got {fit!r}")
    if layout not in LAYOUTS:
        raise InputError(f"layout: expected one of {LAYOUTS}, got {layout!r}")
    camera = _is_camera(driving)
    if best_frame and camera:
        raise InputError("--best-frame searches the whole driving video first: expected a video file, "
                         f"got camera {driving}")
    info = probe(int(driving) if camera else driving)  # fails early on a missing/unreadable video
    if info.kind == "image":
        # One picture drives no motion: it would write a one-frame video (usually swapped options).
        raise InputError(f"--driving {driving}: expected a video ({', '.join(VIDEO_EXTS)}), a frame folder or a "
                         "camera index, got a still picture (did you swap --source and --driving?)")
    total = info.frames if info.frames is None or max_frames is None else min(info.frames, max_frames)
    if max_frames is not None and total is None:
        total = max_frames
    out_fps = float(fps or info.fps or DEFAULT_FPS)
    picture = read_image(source)
    with Animator(model_dir, backend=backend, mode=mode, precision=precision, providers=providers,
                  threads=threads, output_size=output_size, smoothing=smoothing) as anim:
        box, side_in = None, 0
        if fit == "pad":
            if picture.shape[0] != picture.shape[1]:
                # Side by side shows the squares the model saw (padding included); only the result
                # view is cut back to the picture's shape.
                kept = ("the output keeps its aspect ratio" if layout == "result" else
                        "the side-by-side panels show the padded squares")
                _notify(notify, f"the source picture: {picture.shape[1]}×{picture.shape[0]} (W×H), padded to a square "
                                f"for the model; {kept}")
            picture, box = pad_to_square(picture, "source image")
            side_in = picture.shape[0]
        else:
            _notify(notify, crop_note(picture.shape, "the source picture", _FIT_HINT))
        anim.set_source(picture)
        if best_frame:
            def candidates(limit: int | None) -> Iterator[np.ndarray]:  # as the model will see them
                for f in iter_frames(driving, max_frames=limit):
                    yield pad_to_square(f, "driving frame")[0] if fit == "pad" else f

            best = anim.find_reference(candidates(max_frames))
            anim.set_reference(next(f for i, f in enumerate(candidates(best + 1)) if i == best))
            _notify(notify, f"--best-frame: the reference is driving frame {best + 1} (counted from 1), the one posed "
                            "most like the source")
        geometry = RegionGeometry.from_manifest(anim.manifest) if show_regions else None
        anim.keep_regions = show_regions
        # Said before the progress bar starts (the probe read the first frame's size).
        if fit != "pad":
            _notify(notify, crop_note((info.height, info.width), "the driving frames", _FIT_HINT))
        square = max(info.height, info.width) if fit == "pad" else min(info.height, info.width)
        frames = iter_frames(int(driving) if camera else driving, max_frames=max_frames, allow_short=allow_short)
        shape = [0, 0]  # (height, width) of the results

        def animated() -> Iterator[np.ndarray]:
            with progress(total, desc="animate", use_tqdm=show_progress) if show_progress else _Null() as bar:
                try:
                    for frame in frames:
                        if fit == "pad":
                            frame = pad_to_square(frame, "driving frame")[0]
                        result = anim.run(frame)
                        if show_regions or layout != "result":
                            regs = anim.last_regions if show_regions else None
                            if layout == "result":
                                result = compose(result, regions=regs, geometry=geometry)
                                if box is not None:
                                    result = unpad(result, box, side_in)
                            else:
                                result = compose(result, layout=layout, source=picture, driving=frame,
                                                 regions=regs, geometry=geometry)
                        elif box is not None:
                            result = unpad(result, box, side_in)
                        shape[:] = result.shape[:2]
                        yield result
                        bar.update(1)
                except KeyboardInterrupt:
                    if not camera:
                        raise
                    # Ctrl-C ends a camera recording; what was captured is written.

        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always")
            count = write_video(out, animated(), fps=out_fps)
        for w in said:  # a short driving video is said as a note, like the others; the rest as they came
            if notify is not None and issubclass(w.category, ShortVideoWarning):
                notify(str(w.message))
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        return RenderResult(out, count, out_fps, anim.backend, anim.stats(), (shape[1], shape[0]),
                            anim.manifest.model.name, _size_note(square, anim.image_size, output_size))


_FIT_HINT = "--fit pad (fit=\"pad\") keeps everything"


def _size_note(side: int, model_side: int, output_size: str | int) -> str:
    """Said with the result when the default output (the model's resolution, what the model makes:
    upscaling adds no detail) is smaller than the driving frames' square."""
    if output_size != "model" or side <= model_side:
        return ""
    return f"the model's resolution; --output-size crop: {side}×{side}"


def _notify(notify: Callable[[str], None] | None, line: str | None) -> None:
    if notify is not None and line:
        notify(line)


class _Null:
    def update(self, n: int = 1) -> None:
        pass

    def __enter__(self) -> "_Null":
        return self

    def __exit__(self, *exc: object) -> None:
        pass
