"""Which replica takes a new stream: the less busy of two, on whichever node it runs.

Serve's default router (``PowerOfTwoChoicesRequestRouter``) first tries only the replicas on the
proxy's own node (``LocalityMixin.apply_locality_routing`` in
``ray/serve/_private/request_router/request_router.py``) and moves on only when they refuse; with
one proxy on the head and streams that each hold a replica for minutes, every stream would pile on
the head's replicas until they are full. This router keeps the power-of-two-choices rule (two
random replicas, the one with fewer ongoing requests — streams — wins; Serve's
``_select_from_candidate_replicas`` does the comparing) over all replicas, wherever they run.
It uses Serve's public request-router API (``ray.serve.request_router``, alpha in Ray 2.60;
"Use Custom Algorithm for Request Routing" in the Serve docs).
"""

from __future__ import annotations

import random
from typing import List, Optional

from ray.serve.request_router import FIFOMixin, PendingRequest, RequestRouter, RunningReplica


class LeastStreamsRouter(FIFOMixin, RequestRouter):
    """Power of two choices over every replica (no preference for the proxy's node)."""

    async def choose_replicas(self, candidate_replicas: List[RunningReplica],
                              pending_request: Optional[PendingRequest] = None) -> List[List[RunningReplica]]:
        if len(candidate_replicas) <= 2:
            return [random.sample(candidate_replicas, len(candidate_replicas))]
        return [random.sample(candidate_replicas, 2)]
