"""Who may call what: bearer tokens per role, checked by a server interceptor.

Tokens are long random strings handed to each client (`contact-router token` makes
one). The router keeps only their SHA-256 digests, in a TOML file:

    [[token]]
    name = "voice-gateway-1"      # shown in logs, never the token
    role = "gateway"              # gateway | agent | reporting | supervisor | admin
    sha256 = "9f86d0..."
    # agent tokens act for one agent: agent_id = "alice"

A plain digest suffices because a token is 256 random bits, not a password: nothing
can be guessed from its digest. Roles:

- gateway: ContactService (submit, follow, abandon contacts)
- agent: AgentService, for its own agent id only, and only that agent's offers and
  contacts (PERMISSION_DENIED otherwise)
- reporting: ReportingService, EventService (the event stream)
- supervisor: SupervisorService (acting on agents and waiting contacts; each action
  is recorded with the token's name), and ReportingService to watch the queue
- admin: everything

Health and reflection need no token, so that probes work.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeAlias

import grpc
import structlog
import tomli_w
from google.protobuf.message import Message

from router.api.errors import abort
from router.errors import AccessDenied, PermissionDenied, TokenError, Unauthenticated
from router.toml_file import TomlFileError, read_toml

log = structlog.get_logger(__name__)

_PACKAGE = "contactrouter.v1"


class Role(StrEnum):
    GATEWAY = "gateway"
    AGENT = "agent"
    REPORTING = "reporting"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


_SERVICE_ROLES: dict[str, frozenset[Role]] = {
    f"{_PACKAGE}.ContactService": frozenset({Role.GATEWAY}),
    f"{_PACKAGE}.AgentService": frozenset({Role.AGENT}),
    f"{_PACKAGE}.ReportingService": frozenset({Role.REPORTING, Role.SUPERVISOR}),
    f"{_PACKAGE}.EventService": frozenset({Role.REPORTING}),
    f"{_PACKAGE}.SupervisorService": frozenset({Role.SUPERVISOR}),
}


def roles_for(method: str) -> frozenset[Role] | None:
    """The roles (besides admin) allowed to call `method` ("/package.Service/Method");
    None for services open to all (health, reflection)."""
    service = method.strip("/").split("/", 1)[0]
    if service in _SERVICE_ROLES:
        return _SERVICE_ROLES[service]
    if service.startswith(f"{_PACKAGE}."):
        return frozenset()  # a router service not listed above: admin only
    return None


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a token belongs to."""

    name: str
    role: Role
    agent_id: str | None = None


class Tokens:
    """The accepted tokens, by digest."""

    def __init__(self, principals: dict[str, Principal]) -> None:
        self._by_digest = principals

    @classmethod
    def load(cls, path: Path) -> Tokens:
        try:
            data = read_toml(path)
        except TomlFileError as error:
            raise TokenError(str(error)) from None
        entries = data.get("token", [])
        if not isinstance(entries, list) or not entries:
            raise TokenError(f"{path}: no [[token]] entries")
        principals: dict[str, Principal] = {}
        for index, entry in enumerate(entries, 1):
            where = f"{path}: token {index}"
            if not isinstance(entry, dict):
                raise TokenError(f"{where}: must be a table")
            name = str(entry.get("name") or f"token-{index}")
            digest = str(entry.get("sha256", "")).lower()
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                raise TokenError(f"{where} ({name}): sha256 must be 64 hex digits")
            try:
                role = Role(str(entry.get("role", "")))
            except ValueError:
                choices = ", ".join(r.value for r in Role)
                raise TokenError(f"{where} ({name}): role must be one of {choices}") from None
            agent_id = entry.get("agent_id")
            if (role is Role.AGENT) != (agent_id is not None):
                raise TokenError(
                    f"{where} ({name}): agent_id is required for, and only for, role agent"
                )
            principals[digest] = Principal(name, role, None if agent_id is None else str(agent_id))
        return cls(principals)

    def principal(self, token: str) -> Principal | None:
        # A lookup by digest: timing can tell at most something about a SHA-256 of the
        # guess, never about a token, so no constant-time scan over every token (one
        # per agent: thousands) is needed on every call.
        return self._by_digest.get(digest_of(token))


def digest_of(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def token_entry(token: str, name: str, role: Role, agent_id: str | None = None) -> str:
    """The TOML entry that accepts `token`, to append to a tokens file.

    A TOML writer quotes the values, so a name or agent id holding quotes, newlines or
    brackets stays a value: it cannot add a line, a key or a token to the file."""
    entry = {"name": name, "role": role.value}
    if agent_id is not None:
        entry["agent_id"] = agent_id
    entry["sha256"] = digest_of(token)
    # The header here, the keys by the writer: appended entries stay [[token]] tables (the
    # writer would make a one-entry array an inline `token = [...]`, which a second
    # entry in the same file would repeat).
    return "[[token]]\n" + tomli_w.dumps(entry)


OwnerOf = Callable[[str, str], str | None]
"""("offer" | "contact", id) -> the agent holding it now, or None if unknown."""

Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
Behavior = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Any]


class AccessInterceptor(grpc.aio.ServerInterceptor):
    """Checks the bearer token of every call to a router service."""

    def __init__(self, tokens: Tokens, owner_of: OwnerOf) -> None:
        self._tokens = tokens
        self._owner_of = owner_of

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = await continuation(details)
        roles = roles_for(details.method)
        if handler is None or roles is None:
            return handler
        token = _bearer(details.invocation_metadata or ())
        principal = None if token is None else self._tokens.principal(token)
        if principal is None:
            log.warning("access_refused", method=details.method, reason="no valid token")
            return _refusing(
                handler,
                Unauthenticated(
                    "a valid bearer token is required (metadata: authorization: Bearer <token>)"
                ),
            )
        if principal.role is not Role.ADMIN and principal.role not in roles:
            log.warning(
                "access_refused", method=details.method, token=principal.name, role=principal.role
            )
            return _refusing(
                handler,
                PermissionDenied(
                    f"role {principal.role.value} may not call {details.method}",
                    role=principal.role.value,
                    method=details.method,
                ),
            )
        if principal.role is Role.AGENT:
            return _checked(handler, lambda request: self._agent_may(principal, request))
        return handler

    def _agent_may(self, principal: Principal, request: Message) -> PermissionDenied | None:
        """Why an agent's token may not make this request, or None if it may."""
        agent_id = getattr(request, "agent_id", None)
        role = principal.role.value
        if agent_id != principal.agent_id:
            return PermissionDenied(
                f"this token acts for agent {principal.agent_id} only", role=role
            )
        for kind in ("offer", "contact"):
            value = getattr(request, f"{kind}_id", "")
            if value:
                owner = self._owner_of(kind, value)
                if owner is not None and owner != principal.agent_id:
                    return PermissionDenied(f"{kind} {value} belongs to another agent", role=role)
        return None


LOOPBACK_CALLER = "local caller (no ROUTER_TOKENS_FILE)"


def caller_name(tokens: Tokens | None, metadata: Iterable[tuple[str, str | bytes]]) -> str:
    """Who makes a call, for audit records: its token's name (the interceptor has
    already checked the token), or LOOPBACK_CALLER on a router without tokens."""
    if tokens is None:
        return LOOPBACK_CALLER
    token = _bearer(metadata)
    principal = None if token is None else tokens.principal(token)
    return "(unknown)" if principal is None else principal.name


def _bearer(metadata: Iterable[tuple[str, str | bytes]]) -> str | None:
    for key, value in metadata:
        if key == "authorization":
            text = value.decode() if isinstance(value, bytes) else value
            scheme, _, token = text.partition(" ")
            if scheme.lower() == "bearer" and token:
                return token.strip()
    return None


def _refusing(handler: Handler, error: AccessDenied) -> Handler:
    async def refuse(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        await abort(context, error)

    async def refuse_stream(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        await abort(context, error)
        yield  # pragma: no cover - makes this an async generator

    return _rebuilt(handler, refuse, refuse_stream)


def _checked(handler: Handler, forbidden: Callable[[Any], PermissionDenied | None]) -> Handler:
    """The handler, refusing with PERMISSION_DENIED when `forbidden(request)` says why."""
    # The aio server calls these as coroutine / async generator functions.
    call_unary: Any = handler.unary_unary
    call_stream: Any = handler.unary_stream

    async def unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        refusal = forbidden(request)
        if refusal is not None:
            log.warning("access_refused", reason=str(refusal))
            await abort(context, refusal)
        return await call_unary(request, context)

    async def stream(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        refusal = forbidden(request)
        if refusal is not None:
            log.warning("access_refused", reason=str(refusal))
            await abort(context, refusal)
        async for message in call_stream(request, context):
            yield message

    return _rebuilt(handler, unary, stream)


def _rebuilt(handler: Handler, unary: Behavior, stream: Behavior) -> Handler:
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(
            stream,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    return grpc.unary_unary_rpc_method_handler(
        unary,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )
