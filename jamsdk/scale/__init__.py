"""Scaling out on Ray: offline animation jobs on Ray Data (``jamsdk batch``).

The live multi-stream service on Ray Serve is :mod:`jamsdk.serve`. Importing this package imports
no Ray: the modules that need it import it when called (``pip install "jamsdk[ray]"``).
"""
