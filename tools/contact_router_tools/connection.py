"""How every command that talks to a router reaches it, defined once: the flags
(`--router`, `--tls-ca`, `--client-cert`, `--client-key`, `--token-file`; the token may
also come from CONTACT_ROUTER_TOKEN), the output flag (`--format`), and what a failed call
says to the person who typed the command: one line, what is wrong and what to do.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import grpc
from contactrouter.client import TOKEN_VARIABLE, ClientTls, connect
from contactrouter.error_details import ErrorDetails, error_details

from router.errors import ConfigError, RouterError

DEFAULT_ROUTER = "127.0.0.1:50051"
FORMATS = ("table", "json", "csv")
START_HINT = "start one (`make run` or `contact-router serve`) or pass --router HOST:PORT"

Request = TypeVar("Request")
Response = TypeVar("Response")

FlagOf = Callable[[str], str | None]
"""A command's map from a protobuf field the router names to the flag that set it."""


def add_router_arguments(
    parser: argparse.ArgumentParser,
    router_help: str = f"the router's address (default {DEFAULT_ROUTER})",
) -> None:
    """The connection flags, the same for every command (`router_help`: what --router
    means for a command whose default is not DEFAULT_ROUTER)."""
    group = parser.add_argument_group("connecting to the router")
    group.add_argument("--router", metavar="HOST:PORT", help=router_help)
    group.add_argument(
        "--tls-ca",
        type=Path,
        metavar="FILE",
        help="PEM file of the CA that signed the router's certificate: connect with TLS",
    )
    # The client's own pair, named apart from serve's --tls-cert-file and --tls-key-file
    # (the router's certificate), so that nobody gives one where the other is meant.
    group.add_argument(
        "--client-cert",
        type=Path,
        metavar="FILE",
        help="PEM certificate of this client, for a router that requires one (with --client-key)",
    )
    group.add_argument(
        "--client-key", type=Path, metavar="FILE", help="PEM private key of --client-cert"
    )
    group.add_argument(
        "--token-file",
        type=Path,
        metavar="FILE",
        help=f"file holding the bearer token (default: the {TOKEN_VARIABLE} environment "
        "variable, if set), for a router with tokens",
    )


def add_format_argument(parser: argparse.ArgumentParser, csv_help: str) -> None:
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="table",
        help=f"table (default) for people; json for scripts; csv: {csv_help}",
    )


def _read(flag: str, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise ConfigError(f"{flag} {path}: {error.strerror or error}") from None


def _pem(flag: str, path: Path, kind: str) -> bytes:
    """The file's bytes, when it holds a PEM block of `kind` (gRPC would otherwise fail
    later with log lines and no error)."""
    content = _read(flag, path)
    if not re.search(rb"-----BEGIN [A-Z ]*" + kind.encode() + b"-----", content):
        raise ConfigError(f"{flag} {path}: not a PEM file with a {kind}")
    return content


@dataclass(frozen=True, slots=True)
class RouterConnection:
    """Where the router is and the credentials to reach it."""

    address: str
    token: str | None = None
    tls: ClientTls | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace, default: str = DEFAULT_ROUTER) -> RouterConnection:
        """From the connection flags; ConfigError (naming the flag and the file) when a
        file is missing, unreadable or not what it should be."""
        tls = None
        if (args.client_cert is None) != (args.client_key is None):
            raise ConfigError("--client-cert and --client-key go together: give both or neither")
        if args.tls_ca is not None or args.client_cert is not None:
            tls = ClientTls(
                root_certificates=(
                    None if args.tls_ca is None else _pem("--tls-ca", args.tls_ca, "CERTIFICATE")
                ),
                certificate_chain=(
                    None
                    if args.client_cert is None
                    else _pem("--client-cert", args.client_cert, "CERTIFICATE")
                ),
                private_key=(
                    None
                    if args.client_key is None
                    else _pem("--client-key", args.client_key, "PRIVATE KEY")
                ),
            )
        token = os.environ.get(TOKEN_VARIABLE) or None
        if args.token_file is not None:
            token = _read("--token-file", args.token_file).decode(errors="replace").strip()
            if not token:
                raise ConfigError(f"--token-file {args.token_file} is empty")
        return cls(args.router or default, token, tls)

    def channel(self) -> grpc.aio.Channel:
        """A channel with the client's retry policy (see contactrouter.client)."""
        return connect(self.address, token=self.token, tls=self.tls)

    async def call(
        self,
        method: grpc.aio.UnaryUnaryMultiCallable[Request, Response],
        request: Request,
        *,
        flag_of: FlagOf | None = None,
        needs: str = "a reporting or admin token",
    ) -> Response:
        """One call; a refusal or failure becomes a RouterError whose message is one line
        for the person at the terminal (see explain)."""
        try:
            return await method(request)
        except grpc.aio.AioRpcError as error:
            raise RouterError(self.explain(error, flag_of=flag_of, needs=needs)) from None

    def explain(
        self,
        error: grpc.aio.AioRpcError,
        *,
        flag_of: FlagOf | None = None,
        needs: str = "a reporting or admin token",
    ) -> str:
        """What went wrong and what to do, in one line, naming the command's flags (not
        the protobuf fields the router names)."""
        code = error.code()
        details = " ".join((error.details() or "").split())
        at = f"the router at {self.address}"
        if code is grpc.StatusCode.UNAVAILABLE and _not_connected(details):
            reason = _last_error(details)
            if not details.lower().startswith("failed to connect"):
                return f"cannot resolve {self.address} ({reason}): check the host in --router"
            if self.tls is not None and "handshake" in details.lower():
                return (
                    f"no TLS connection to {at} ({reason}): check --tls-ca (the CA that "
                    "signed its certificate), or leave out --tls-ca, --client-cert and "
                    "--client-key if it serves plaintext"
                )
            if self.tls is None and "socket closed" in details.lower():
                return (
                    f"{at} closed the connection ({reason}): if it serves TLS, pass "
                    "--tls-ca FILE (and --client-cert and --client-key if it asks for a client "
                    f"certificate); if no router runs there, {START_HINT}"
                )
            if self.tls is not None and "socket closed" in details.lower():
                return (
                    f"{at} closed the connection ({reason}): it may want a client "
                    "certificate (--client-cert and --client-key) signed by a CA it trusts"
                )
            return f"no router answering at {self.address} ({reason}): {START_HINT}"
        if code is grpc.StatusCode.UNAUTHENTICATED:
            if self.token is None:
                return (
                    f"{at} wants a bearer token: pass --token-file FILE or set "
                    f"{TOKEN_VARIABLE} ({details})"
                )
            return (
                f"{at} did not accept the token from --token-file or {TOKEN_VARIABLE} "
                f"({details}): check that it is one of its tokens"
            )
        if code is grpc.StatusCode.PERMISSION_DENIED:
            return f"{at} refused this token ({details}): this command needs {needs}"
        if code is grpc.StatusCode.INVALID_ARGUMENT:
            return _invalid(details, _details_of(error), flag_of)
        if code is grpc.StatusCode.DEADLINE_EXCEEDED:
            return f"{at} did not answer in time ({details}): it may be overloaded; try again"
        if code is grpc.StatusCode.UNAVAILABLE:
            sent = _details_of(error)
            wait = None if sent is None else sent.retry_after
            again = "in a moment" if wait is None else f"in {wait:g} s"
            return f"{at} cannot answer now ({details}): try again {again}"
        return f"{at} answered {code.name} ({details})"


def _details_of(error: grpc.aio.AioRpcError) -> ErrorDetails | None:
    """The error details the router sent; None when a status in the trailer does not
    match the call's own code and message (not the router's: a proxy's, say)."""
    try:
        return error_details(error)
    except ValueError:
        return None


def _not_connected(details: str) -> bool:
    """No connection was made (as opposed to a router that answered UNAVAILABLE)."""
    lowered = details.lower()
    return lowered.startswith(("failed to connect", "errors resolving", "dns resolution"))


def _last_error(details: str) -> str:
    """The useful end of gRPC's connection error: "Connection refused", "Socket closed",
    "Domain name not found", the TLS failure."""
    text = details.removesuffix(": OK").rstrip("]")
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return "its certificate is not signed by the CA given: " + text.rsplit(": ", 1)[-1]
    return text.rsplit(": ", 1)[-1]


_SNAKE = re.compile(r"\b[a-z]+(?:_[a-z]+)+\b")


def _invalid(details: str, sent: ErrorDetails | None, flag_of: FlagOf | None) -> str:
    """The refused field of the router's google.rpc.BadRequest, named by the flag that
    set it when the command knows one; else the router's message."""
    if sent is None or not sent.field_violations or flag_of is None:
        return f"refused: {details}"
    violation = sent.field_violations[0]
    flag = flag_of(violation.field)
    if flag is None:
        return f"refused: {details}"
    # Other fields the problem names ("goes with with_abandonment") by their flags too.
    problem = _SNAKE.sub(lambda word: flag_of(word[0]) or word[0], violation.description)
    return f"{flag}: {problem}"


def field_flags(flags: Mapping[str, str]) -> FlagOf:
    """A FlagOf from a table of top-level field names ("patience_seconds") to flags;
    a nested field ("forecast[2].calls") takes its top-level field's flag."""

    def flag_of(field: str) -> str | None:
        return flags.get(re.split(r"[\[.]", field, maxsplit=1)[0])

    return flag_of
