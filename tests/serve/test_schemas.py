"""Request bodies: which unseeded sample requests may be drawn in one pass."""
from genloom.serve.schemas import SampleRequest


def test_requests_are_pooled_only_with_requests_that_ask_for_the_same_draw():
    base = SampleRequest(n=4, labels="7", steps=20)
    assert base.drawn_alike() == SampleRequest(n=9, labels="7", steps=20, format="zip", seed=3).drawn_alike()
    for other in ({"labels": "1"}, {"steps": 10}, {"watermark": False}, {"temperature": 0.5}):
        assert SampleRequest(n=4, **{"labels": "7", "steps": 20, **other}).drawn_alike() != base.drawn_alike()
