"""Scaling out on Ray: offline animation jobs (``jamsdk batch``) on a local Ray or a cluster.

* :mod:`jamsdk.scale.connect`: which Ray, checked before ``ray.init`` (address, token, versions,
  jamsdk on every node), each failure one line.
* :mod:`jamsdk.scale.offline` (the driver) and :mod:`jamsdk.scale.actor` (the actors): rows,
  inputs and outputs travel through Ray, so the nodes need no shared file system.
* :mod:`jamsdk.scale.bundle`: the model folder shipped once per node; :mod:`jamsdk.scale.outputs`:
  containment in ``--out-dir`` and clean-up; :mod:`jamsdk.scale.loopback`: a real multi-node
  cluster on this machine for tests and benchmarks.

The live multi-stream service on Ray Serve is :mod:`jamsdk.serve`. Importing this package imports
no Ray: the modules that need it import it when called (``pip install "jamsdk[ray]"``).
"""
