"""The live multi-stream service on Ray Serve (``jamsdk serve``) and its Python client.

* :mod:`jamsdk.serve.protocol`: the WebSocket protocol and the limits (no Ray needed).
* :mod:`jamsdk.serve.client`: :class:`~jamsdk.serve.client.StreamClient`, one stream per connection
  (needs the ``websockets`` package, part of ``jamsdk[ray]``).
* :mod:`jamsdk.serve.app`: the Serve deployment (imports Ray and FastAPI).

Importing this package imports none of them.
"""
