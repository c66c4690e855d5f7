"""AdminService: what operators call (admin tokens only). Validation and conversion;
the erasure itself is router/erasure.py's."""

from __future__ import annotations

from typing import Any

import grpc
from contactrouter.v1 import contact_router_pb2 as pb
from contactrouter.v1 import contact_router_pb2_grpc as pb_grpc

from router.api.access import Tokens, caller_name
from router.api.convert import timestamp
from router.api.errors import rpc
from router.api.servicer import ActiveSwitchboard, RpcObserver, Servicer, ignore_rpc
from router.domain import InvalidArgument, validation
from router.erasure import erase_customer
from router.store.store import Store

Context = grpc.aio.ServicerContext[Any, Any]

MAX_REASON = 200


class AdminService(Servicer, pb_grpc.AdminServiceServicer):
    def __init__(
        self,
        active: ActiveSwitchboard,
        store: Store,
        tokens: Tokens | None,
        observe_rpc: RpcObserver = ignore_rpc,
    ) -> None:
        super().__init__(active, observe_rpc)
        self._store = store
        self._tokens = tokens

    @rpc
    async def EraseCustomer(
        self, request: pb.EraseCustomerRequest, context: Context
    ) -> pb.EraseCustomerResponse:
        customer_id = validation.customer_id(request.customer_id)
        reason = request.reason
        if len(reason) > MAX_REASON or not reason.isprintable():
            raise InvalidArgument("reason", f"at most {MAX_REASON} printable characters")
        requested_by = caller_name(self._tokens, context.invocation_metadata() or ())
        erasure = await erase_customer(
            self._switchboard, self._store, customer_id, requested_by, reason
        )
        return pb.EraseCustomerResponse(
            erasure_id=erasure.id,
            erased_at=timestamp(erasure.erased_at),
            contacts_erased=erasure.contacts,
            comments_erased=erasure.comments,
            pseudonym=erasure.pseudonym,
        )
