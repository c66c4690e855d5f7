"""Domain errors. The transport maps each class to one status code."""


class DomainError(Exception):
    """A request the core refused; nothing was changed."""


class InvalidArgument(DomainError):
    """A field is missing or malformed."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


class NotFound(DomainError):
    """The contact, agent or offer does not exist (or is no longer active)."""


class WrongState(DomainError):
    """The request does not fit the current state."""


class QueueFull(DomainError):
    """The channel's queue holds its maximum of waiting contacts: come back later."""
