"""The live loop: driving frame → Animator → view → JPEG for the page (and the sinks).

One thread (the one calling :meth:`LiveSession.run`) owns the Animator; the HTTP threads only
read the latest JPEG and the stats, and post control actions that the loop applies between
frames, so the Animator is never called from two threads.

Posted actions are coalesced, so a flood of requests cannot queue work: at most one of each kind
waits (a second ``search`` while one waits is the same search; the latest ``layout`` and
``regions`` win), and a reference search, which runs the region predictor on 50 frames, starts at
most once per :data:`SEARCH_MIN_INTERVAL_S` and never takes more than about 1/(1 + :data:`SEARCH_SPACING`)
of the loop's time.
"""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import cv2
import numpy as np

from jamsdk.bundled import DEMO_PAGE_NOTE, is_demo
from jamsdk.errors import InputError
from jamsdk.live.sources import DrivingSource, Pacer
from jamsdk.pixels import center_crop_resize, resize_square
from jamsdk.runtime.views import LAYOUTS, RegionGeometry, compose

ACTIONS = ("reset", "search", "layout", "regions")
PANEL_MIN = 256  # small models (the demo is 128²) are shown at least this large
SEARCH_FRAMES = 50  # reference search looks at the last ~2 s of driving frames
JPEG_QUALITY = 85
SEARCH_MIN_INTERVAL_S = 1.0  # a waiting search starts at most this often ...
SEARCH_SPACING = 5.0  # ... and waits at least this many times as long as the last one took


class FrameHub:
    """The newest JPEG and a sequence number; stream handlers wait on it for the next one."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._jpeg: bytes | None = None
        self._seq = 0
        self.closed = False

    def publish(self, jpeg: bytes) -> None:
        with self._cond:
            self._jpeg, self._seq = jpeg, self._seq + 1
            self._cond.notify_all()

    def wait(self, after: int, timeout: float = 1.0) -> tuple[bytes | None, int]:
        """The first JPEG newer than ``after`` (None on timeout or once closed) and its number."""
        with self._cond:
            self._cond.wait_for(lambda: self._seq > after or self.closed, timeout)
            if self.closed or self._seq <= after:
                return None, after
            return self._jpeg, self._seq

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()


@dataclass(frozen=True)
class LiveOptions:
    """What the command line chose (the page toggles ``layout``/``show_regions`` of the preview)."""

    max_fps: float | None = None
    layout: str = "result"
    show_regions: bool = False


class LiveSession:
    """Runs the loop until :meth:`stop`; see the module docstring for the threading rule.

    Args:
        animator: an open :class:`~jamsdk.runtime.animator.Animator` with its source set.
        source_image: the source picture (for the side-by-side view).
        driving: the driving input.
        options: rate cap and the initial view.
        sinks: callables given each frame of the command line's view (recording, virtual camera).
    """

    def __init__(self, animator: Any, source_image: np.ndarray, driving: DrivingSource, options: LiveOptions,
                 sinks: tuple[Callable[[np.ndarray], None], ...] = ()):
        if options.layout not in LAYOUTS:
            raise InputError(f"layout: expected one of {LAYOUTS}, got {options.layout!r}")
        self.anim = animator
        self.source_image = source_image
        self.driving = driving
        self.options = options
        self.sinks = sinks
        self.hub = FrameHub()
        self.geometry = RegionGeometry.from_manifest(animator.manifest)
        animator.keep_regions = options.show_regions  # the overlay's region params, only when drawn
        self.layout = options.layout
        self.show_regions = options.show_regions
        self.message = "reference: first frame"
        self.frames = 0
        self._stop = threading.Event()
        # action → its value, in the order last posted; one entry per kind at most
        self._pending: dict[str, object] = {}
        self._next_search = 0.0
        self._times: collections.deque[float] = collections.deque(maxlen=30)
        self._recent: collections.deque[np.ndarray] = collections.deque(maxlen=SEARCH_FRAMES)
        self._lock = threading.Lock()
        self._stats: dict[str, Any] = {}
        # The page names the model, and says what the bundled demo model is whenever it runs.
        self.model_name = animator.manifest.model.name
        self.note = DEMO_PAGE_NOTE if is_demo(animator.manifest.model_dir) else ""
        self._update_stats()  # the page has something to show before the first frame

    # -- called from other threads ---------------------------------------------------------------

    def control(self, action: str, value: str | None = None) -> None:
        """Post a control action (applied by the loop before its next frame; repeats coalesce).

        ``layout`` takes ``value`` ``"result"`` or ``"side-by-side"`` and ``regions`` ``"on"`` or
        ``"off"``; without one they toggle what is (or is about to be) shown.
        """
        if action not in ACTIONS:
            raise InputError(f"control: expected one of {ACTIONS}, got {action!r}")
        with self._lock:
            if action == "layout":
                if value is not None and value not in LAYOUTS:
                    raise InputError(f"layout: expected one of {LAYOUTS}, got {value!r}")
                now = self._pending.get("layout", self.layout)
                target: object = value or ("side-by-side" if now == "result" else "result")
            elif action == "regions":
                if value is not None and value not in ("on", "off"):
                    raise InputError(f"regions: expected 'on' or 'off', got {value!r}")
                now = self._pending.get("regions", self.show_regions)
                target = (value == "on") if value is not None else not now
            else:
                if value is not None:
                    raise InputError(f"{action}: takes no value, got {value!r}")
                target = True
            self._pending.pop(action, None)  # re-posted: it moves to the end of the order
            self._pending[action] = target

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def stats(self) -> dict[str, Any]:
        """FPS, per-stage milliseconds (p50 over the recent frames) and the view state."""
        with self._lock:
            return dict(self._stats)

    # -- the loop ----------------------------------------------------------------------------------

    def run(self, max_frames: int | None = None) -> None:
        """Animate until :meth:`stop` (or ``max_frames``); the caller closes the resources."""
        pacer = Pacer(self.options.max_fps)
        try:
            while not self._stop.is_set() and (max_frames is None or self.frames < max_frames):
                self._apply_actions()
                frame = self.driving.read()
                self._step(frame)
                pacer.wait(self._stop)
        finally:
            self.hub.close()

    def _step(self, frame: np.ndarray) -> None:
        result = self.anim.run(frame)
        self._recent.append(center_crop_resize(frame, self.anim.image_size))
        if result.shape[0] < PANEL_MIN:
            result = resize_square(result, PANEL_MIN)
        regions = self.anim.last_regions
        view = self._view(result, frame, regions, self.layout, self.show_regions)
        ok, jpeg = cv2.imencode(".jpg", np.ascontiguousarray(view[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if ok:
            self.hub.publish(jpeg.tobytes())
        if self.sinks:
            fixed = view
            if (self.layout, self.show_regions) != (self.options.layout, self.options.show_regions):
                fixed = self._view(result, frame, regions, self.options.layout, self.options.show_regions)
            for sink in self.sinks:
                sink(fixed)
        self.frames += 1
        self._times.append(time.perf_counter())
        self._update_stats()

    def _view(self, result, frame, regions, layout: str, show_regions: bool) -> np.ndarray:
        if layout == "result" and not show_regions:
            return result
        return compose(result, layout=layout, source=self.source_image, driving=frame,
                       regions=regions if show_regions else None, geometry=self.geometry)

    def _apply_actions(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
            if "search" in pending and time.perf_counter() < self._next_search:
                self._pending["search"] = pending.pop("search")  # waits for its turn, still one
            # The view state changes under the lock: control() toggles from what it reads here.
            if "layout" in pending:
                self.layout = str(pending.pop("layout"))
            if "regions" in pending:
                self.show_regions = bool(pending.pop("regions"))
                self.anim.keep_regions = self.show_regions or self.options.show_regions
        for action in pending:
            if action == "reset":
                self.anim.reset()
                self.message = f"reference: frame {self.frames + 1} (reset)"
            elif action == "search":
                self._search()

    def _search(self) -> None:
        if not self._recent:
            self.message = "reference search: no frames yet"
            return
        start = time.perf_counter()
        frames = list(self._recent)
        best = self.anim.find_reference(frames)
        self.anim.set_reference(frames[best])
        self.message = (f"reference: best of the last {len(frames)} frames "
                        f"({len(frames) - best} frame(s) ago)")
        end = time.perf_counter()
        self._next_search = end + max(SEARCH_MIN_INTERVAL_S, SEARCH_SPACING * (end - start))

    def _update_stats(self) -> None:
        times = self._times
        fps = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0
        summary = self.anim.stats()
        # Per-frame work only: "source" and "generator_encoder" ran once, at set_source.
        stages = {k: round(v["p50_ms"], 2) for k, v in summary.items() if k not in ("source", "generator_encoder")}
        with self._lock:
            self._stats = {"fps": round(fps, 2), "frames": self.frames, "ms": stages,
                           "layout": self.layout, "regions": self.show_regions, "message": self.message,
                           "backend": self.anim.backend, "mode": self.anim.mode, "driving": self.driving.name,
                           "max_fps": self.options.max_fps, "model": self.model_name, "note": self.note}


__all__ = ["ACTIONS", "FrameHub", "LiveOptions", "LiveSession"]
