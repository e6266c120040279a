"""Python client for the portwarden daemon: generated ``portwarden.v1`` stubs plus a friendly
:class:`Client`, portpicker's API (``import portwarden as portpicker``) and the socket
hardening. See README.md for usage.

``import portwarden`` loads only portpicker's API: a one-shot ``pick_unused_port()`` costs no more
than with portpicker. Everything else (the socket helpers, and the gRPC names ``Client``, the
errors and the ``*_pb2`` modules, which need grpc) is imported on first use.
"""

from __future__ import annotations

from .dropin import (
    NoFreePortFoundError,
    add_reserved_port,
    bind,
    get_port_from_port_server,
    is_port_free,
    pick_unused_port,
    return_port,
)

TYPE_CHECKING = False  # not typing's: importing typing costs a one-shot script ~2 ms
if TYPE_CHECKING:  # what the lazy names below resolve to, for type checkers and IDEs
    from typing import Any, List

    from .sockets import (
        ACCEPTED_TIMEOUT,
        BUFFER_BYTES,
        Hardening,
        SocketOption,
        bind_hardened,
        harden,
        harden_accepted,
    )
    from .target import DEFAULT_TCP_ADDR, Target, default_socket_path
    from .client import AllocateResult, Client, Lease, Watch, tls_credentials
    from .model import (
        Allocation,
        Event,
        EventKind,
        Existing,
        Health,
        Observed,
        OverallStatus,
        OwnerKind,
        PortCheck,
        PortState,
        ProcessStats,
        Released,
        SnapshotComplete,
    )
    from .errors import (
        Aborted,
        AlreadyExists,
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

#: Names imported on first use (the gRPC ones need grpc or protobuf; the others are kept out
#: of a one-shot ``pick_unused_port()``): name -> module.
_LAZY = {
    **{
        name: ".sockets"
        for name in (
            "ACCEPTED_TIMEOUT",
            "BUFFER_BYTES",
            "Hardening",
            "SocketOption",
            "bind_hardened",
            "harden",
            "harden_accepted",
        )
    },
    **{name: ".target" for name in ("DEFAULT_TCP_ADDR", "Target", "default_socket_path")},
    **{
        name: ".client"
        for name in ("Client", "AllocateResult", "Lease", "Watch", "tls_credentials")
    },
    **{name: ".model" for name in ("Allocation", "Event", "EventKind", "Existing", "Health", "Observed", "OverallStatus", "OwnerKind", "PortCheck", "PortState", "ProcessStats", "Released", "SnapshotComplete")},
    **{
        name: ".errors"
        for name in (
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
        )
    },
    **{name: f".v1.{name}" for name in ("ports_pb2", "network_pb2", "watchdog_pb2")},
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    loaded = import_module(module, __name__)
    value = loaded if module.endswith(name) else getattr(loaded, name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    # portpicker's API, loaded with the package
    "NoFreePortFoundError",
    "add_reserved_port",
    "bind",
    "get_port_from_port_server",
    "is_port_free",
    "pick_unused_port",
    "return_port",
    # the gRPC client and the socket hardening, loaded on first use
    *_LAZY,
]
