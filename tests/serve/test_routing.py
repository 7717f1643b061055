"""The stream router: power of two choices over every replica, wherever it runs (no Ray cluster needed)."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("ray.serve.request_router")


def test_two_random_candidates_from_all_replicas_or_all_of_a_few():
    from jamsdk.serve.routing import LeastStreamsRouter

    choose = LeastStreamsRouter.choose_replicas  # uses nothing of the router's own state
    many = [f"replica-{i}" for i in range(6)]
    seen = set()
    for _ in range(60):
        (pair,) = asyncio.run(choose(None, many))
        assert len(pair) == 2 and len(set(pair)) == 2 and set(pair) <= set(many)
        seen.update(pair)
    assert seen == set(many)  # no preference for some replicas (Serve's default prefers its own node's)
    (few,) = asyncio.run(choose(None, many[:2]))
    assert sorted(few) == many[:2]
    (one,) = asyncio.run(choose(None, many[:1]))
    assert one == many[:1]
