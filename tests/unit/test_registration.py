"""Which methods are registered with grpcio (router/api/registration.py)."""

from __future__ import annotations

from contactrouter.v1 import contact_router_pb2 as pb

from router.api.registration import PER_CONTACT


def test_every_per_contact_method_is_a_method_of_the_proto() -> None:
    """A misspelt name would not fail anywhere else: the method would quietly be served
    generically."""
    methods = {
        f"/{service.full_name}/{method.name}"
        for service in pb.DESCRIPTOR.services_by_name.values()
        for method in service.methods
    }
    assert PER_CONTACT - methods == set()
