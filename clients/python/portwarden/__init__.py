"""Python client for the portwarden daemon: generated ``portwarden.v1`` stubs plus a friendly
:class:`Client`. See README.md for usage."""

from .client import (
    DEFAULT_TCP_ADDR,
    AllocateResult,
    Client,
    Lease,
    Target,
    Watch,
    default_socket_path,
    tls_credentials,
)
from .errors import (
    AlreadyExists,
    Aborted,
    Cancelled,
    DataLoss,
    DeadlineExceeded,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    NotFound,
    OutOfRange,
    PermissionDenied,
    PortwardenError,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    Unimplemented,
    Unknown,
    from_rpc_error,
)
from .v1 import network_pb2, ports_pb2, watchdog_pb2

__version__ = "0.1.0"

__all__ = [
    "Client",
    "Target",
    "AllocateResult",
    "Lease",
    "Watch",
    "DEFAULT_TCP_ADDR",
    "default_socket_path",
    "tls_credentials",
    "PortwardenError",
    "Aborted",
    "AlreadyExists",
    "Cancelled",
    "DataLoss",
    "DeadlineExceeded",
    "FailedPrecondition",
    "Internal",
    "InvalidArgument",
    "NotFound",
    "OutOfRange",
    "PermissionDenied",
    "ResourceExhausted",
    "Unauthenticated",
    "Unavailable",
    "Unimplemented",
    "Unknown",
    "from_rpc_error",
    "ports_pb2",
    "network_pb2",
    "watchdog_pb2",
]
