"""``jamsdk live``: animate a picture from a camera or a looped video and watch it in a browser.

- :mod:`jamsdk.live.sources`: the driving input (camera index, or a video/GIF/frame folder, looped).
- :mod:`jamsdk.live.session`: the loop (frame → :class:`~jamsdk.runtime.animator.Animator` → view
  → JPEG), the controls and the stats; one thread owns the Animator.
- :mod:`jamsdk.live.server`: the page, ``/stream.mjpg``, ``/stats.json`` and ``/control/<action>``
  on the standard library's ``ThreadingHTTPServer`` (127.0.0.1 unless asked otherwise).
- :mod:`jamsdk.live.sinks`: recording to a file (atomic) and the virtual camera (``pyvirtualcam``).

Nothing here imports more than numpy and OpenCV until the Animator opens its backend.
"""
