"""Every error contact-router raises on purpose, under one base class.

    RouterError                    something the router refused or could not do; the
    |                              message says what, and what to do about it
    +-- DomainError                a request was refused; nothing was changed
    |   +-- InvalidArgument        a field is missing or malformed (`field` names it)
    |   +-- NotFound               no such contact, agent or offer (or no longer active)
    |   +-- WrongState             the request does not fit the current state
    |   |   +-- NotEnoughHistory   too little recorded history to forecast from
    |   |   +-- ChannelClosed      a call submitted outside its channel's hours
    |   +-- LimitReached           a configured limit is reached; come back later
    |       +-- QueueFull          the channel's queue holds its maximum of contacts
    |       +-- QueueMemoryFull    the waiting contacts hold their maximum of bytes
    |       +-- ContactTooLarge    one contact holds more bytes than a contact may
    |       +-- TooManyWatchers    the router serves its maximum of WatchQueue streams
    |       +-- TooManyStreams     as many event streams are open as allowed
    +-- AccessDenied               the caller may not make this call; nothing was changed
    |   +-- Unauthenticated        no valid bearer token came with the call
    |   +-- PermissionDenied       the token's role, or its agent, may not make this call
    +-- StreamReplaced             another offer stream of the same agent took over
    +-- Unavailable                the router cannot take the request now; the same
    |   |                          request, retried, will be answered (`retry_after`)
    |   +-- StoreUnavailable       PostgreSQL could not take the write or the read
    |   +-- ShuttingDown           this router is stopping
    |   +-- NotActive              this router is a standby (another one is active)
    +-- StoreError                 the store's own conditions, handled inside the router
    |   +-- DuplicateKey           a row with this idempotency key already exists
    |   +-- ActiveLockLost         another router became the active one
    +-- ConfigError                a setting or an operator's file is malformed (a
    |   |                          certificate that does not match its key too); the
    |   |                          message names the variable or the file
    |   +-- TokenError             the tokens file
    |   +-- TomlFileError          a TOML file that cannot be read (router/toml_file.py)
    +-- StartupError               the router cannot start (a port is taken, the database
    |                              is missing or refuses the user)
    +-- InternalError              a fault of the router itself (a bug); the server log
                                   has the traceback, the caller only this class

Nothing above the store catches a driver exception (the store translates them), and
nothing above the transport sees a gRPC status: router/api/errors.py maps each class
here to its status code, and to the standard error details a client can act on
(`reason` is the stable google.rpc.ErrorInfo reason, `metadata` its metadata: facts
a client can act on, such as the channel and the limit). The command line prints the
message of a ConfigError or StartupError on one line and exits non-zero.
"""

from __future__ import annotations

from typing import ClassVar


class RouterError(Exception):
    """Base of every error contact-router raises on purpose."""

    reason: ClassVar[str] = "ROUTER_ERROR"
    """A stable, machine-readable name (UPPER_SNAKE_CASE) for clients and logs."""

    def __init__(self, message: str = "", **metadata: str | int | float) -> None:
        super().__init__(message)
        self.metadata: dict[str, str] = {key: str(value) for key, value in metadata.items()}
        """Facts a client can act on (`channel="phone", limit=100`), sent to it as the
        google.rpc.ErrorInfo metadata; keys are lowerCamelCase, as ErrorInfo asks."""


# --------------------------------------------------------------------- requests


class DomainError(RouterError):
    """A request the core refused; nothing was changed."""

    reason = "REFUSED"


class InvalidArgument(DomainError):
    """A field is missing or malformed."""

    reason = "INVALID_FIELD"

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class NotFound(DomainError):
    """The contact, agent or offer does not exist (or is no longer active)."""

    reason = "NOT_FOUND"


class WrongState(DomainError):
    """The request does not fit the current state."""

    reason = "WRONG_STATE"


class NotEnoughHistory(WrongState):
    """A forecast asked of a history shorter than its seasonality needs (FAILED_PRECONDITION;
    the metadata give the days needed and recorded)."""

    reason = "NOT_ENOUGH_HISTORY"


class ChannelClosed(WrongState):
    """A call submitted while its channel is closed (hours of operation) and its gateway
    did not ask to queue it anyway: the gateway plays its closed message. Metadata:
    `channel`, and `opensAt` (ISO 8601, UTC) unless it never opens again."""

    reason = "CHANNEL_CLOSED"


class LimitReached(DomainError):
    """A configured limit is reached: come back later, or offer another channel."""

    reason = "LIMIT_REACHED"


class TooManyStreams(LimitReached):
    """As many streams of this kind are open as the router allows (event streams:
    ROUTER_MAX_EVENT_STREAMS); metadata `limit`."""

    reason = "TOO_MANY_STREAMS"


class QueueFull(LimitReached):
    """The channel's queue holds its maximum of waiting contacts."""

    reason = "QUEUE_FULL"


class QueueMemoryFull(LimitReached):
    """The waiting contacts hold their maximum of bytes (attributes and skills)."""

    reason = "QUEUE_MEMORY_FULL"


class ContactTooLarge(LimitReached):
    """One contact holds more bytes of ids, attributes and skills than a contact may."""

    reason = "CONTACT_TOO_LARGE"


class TooManyWatchers(LimitReached):
    """The router serves its maximum of WatchQueue streams (ROUTER_MAX_WATCHERS)."""

    reason = "TOO_MANY_WATCHERS"


# ------------------------------------------------------------------------ access


class AccessDenied(RouterError):
    """The caller may not make this call; nothing was changed."""

    reason = "ACCESS_DENIED"


class Unauthenticated(AccessDenied):
    """No valid bearer token came with the call."""

    reason = "UNAUTHENTICATED"


class PermissionDenied(AccessDenied):
    """The token is valid, but its role (or the agent it acts for) may not make this call."""

    reason = "PERMISSION_DENIED"


# ------------------------------------------------------------------ availability


class StreamReplaced(RouterError):
    """An agent's offer stream ended because a newer stream of the same agent (another
    window, a reconnect) took over: this desk receives no more offers and should not
    reopen it by itself."""

    reason = "STREAM_REPLACED"


class Unavailable(RouterError):
    """The router cannot take the request now; retried, the same request will be
    answered. `retry_after` is a hint in seconds."""

    reason = "UNAVAILABLE"
    retry_after: ClassVar[float] = 1.0


class StoreUnavailable(Unavailable):
    """PostgreSQL could not take the write or the read (down, unreachable, overloaded)."""

    reason = "DATABASE_UNAVAILABLE"


class ShuttingDown(Unavailable):
    """This router is stopping; its successor (or the standby) answers the retry."""

    reason = "SHUTTING_DOWN"


class NotActive(Unavailable):
    """This router is a standby: the active router serves."""

    reason = "STANDBY"


# ------------------------------------------------------------------------- store


class StoreError(RouterError):
    """A condition of the store that the router handles itself."""

    reason = "STORE_ERROR"


class DuplicateKey(StoreError):
    """A row with this unique key (a submission's idempotency key) already exists."""

    reason = "DUPLICATE_KEY"


class ActiveLockLost(StoreError):
    """Another router became the active one: this one must stop writing and serving."""

    reason = "ACTIVE_LOCK_LOST"


# ------------------------------------------------------------------- operations


class ConfigError(RouterError):
    """A setting or an operator's file is malformed; the message names it."""

    reason = "CONFIG_ERROR"


class TokenError(ConfigError):
    """The tokens file is malformed; the message says where."""

    reason = "TOKENS_FILE_ERROR"


class StartupError(RouterError):
    """The router cannot start; the message says what is wrong and what to do."""

    reason = "STARTUP_ERROR"


class InternalError(RouterError):
    """A fault of the router itself (a bug): what a caller is told when an RPC fails in
    a way nothing above foresaw. The server log has the traceback."""

    reason = "INTERNAL"
