"""`contact-router erase`: erase one customer's personal data (AdminService.EraseCustomer,
an admin token): the customer id and attributes of their finished contacts, and their
feedback comments. Timings and ratings stay, so no report changes; the router records
who asked, when and why, never the customer id. It cannot be undone; asking again
erases nothing more.
"""

from __future__ import annotations

import argparse
import sys

from contactrouter.v1 import contact_router_pb2 as pb
from contactrouter.v1 import contact_router_pb2_grpc as pb_grpc

from contact_router_tools.connection import (
    RouterConnection,
    add_format_argument,
    add_router_arguments,
    field_flags,
)
from contact_router_tools.proto_values import when
from contact_router_tools.tables import Table, records, render_csv, render_json

FLAGS = {"customer_id": "CUSTOMER_ID", "reason": "--reason"}


def add_erase_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("customer_id", metavar="CUSTOMER_ID", help="as gateways sent it")
    parser.add_argument(
        "--reason", default="", help="why, for the audit record (a ticket number, say)"
    )
    add_format_argument(parser, "one row")
    add_router_arguments(parser)


def erasure_table(response: pb.EraseCustomerResponse) -> Table:
    header = ("erasure", "erased_at", "contacts_erased", "comments_erased", "pseudonym")
    row = (
        response.erasure_id,
        when(response.erased_at),
        response.contacts_erased,
        response.comments_erased,
        response.pseudonym,
    )
    return header, [row]


async def run_erase(args: argparse.Namespace) -> int:
    router = RouterConnection.from_args(args)
    request = pb.EraseCustomerRequest(customer_id=args.customer_id, reason=args.reason)
    async with router.channel() as channel:
        stub = pb_grpc.AdminServiceStub(channel)
        response = await router.call(
            stub.EraseCustomer, request, flag_of=field_flags(FLAGS), needs="an admin token"
        )
    table = erasure_table(response)
    if args.format == "csv":
        sys.stdout.write(render_csv(table))
    elif args.format == "json":
        sys.stdout.write(render_json(records(table)[0]))
    elif response.contacts_erased or response.comments_erased:
        print(
            f"Erased: {response.contacts_erased} contact(s) and {response.comments_erased} "
            f"comment(s); their customer id is now {response.pseudonym} "
            f"(audit record {response.erasure_id})."
        )
    else:
        print(
            "Nothing left to erase: no finished contact carries this customer id (never "
            f"seen, or erased before); audit record {response.erasure_id}."
        )
    return 0
