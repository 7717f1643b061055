"""Streaming inference on exported model folders (numpy + OpenCV; no torch).

- :mod:`jamsdk.runtime.animator`: :class:`~jamsdk.runtime.animator.Animator` (also ``jamsdk.Animator``).
- :mod:`jamsdk.runtime.backends`: ONNX Runtime and TensorRT behind one ``run(feeds)`` interface.
- :mod:`jamsdk.runtime.plan` / :mod:`~jamsdk.runtime.frame_plans`: a source's and a frame's work as
  steps over named slots, run on the host (ONNX Runtime) or device-resident (TensorRT).
- :mod:`jamsdk.runtime.helpers`: the helper graphs that keep a frame on the GPU (pixels, relative algebra).
- :mod:`jamsdk.runtime.onnx2engine`: ONNX graphs → TensorRT plans (``jamsdk build``).
- :mod:`jamsdk.runtime.regions`: the relative mode's host-side math.
- :mod:`jamsdk.runtime.frames`: frame checks and the crop/resize policy.
- :mod:`jamsdk.runtime.render`: picture + driving video → video file (``jamsdk animate``).

Importing this package imports nothing heavy; backends import their library when opened.
"""
