"""Errors raised by :class:`portwarden.Client`.

Every failed call raises a :class:`PortwardenError` subclass chosen by the gRPC status code
(``InvalidArgument``, ``NotFound``, ``PermissionDenied``, ...). The error carries the code, the
server's message and the ``google.rpc`` details the daemon attaches in the
``grpc-status-details-bin`` trailer; ``BadRequest`` field violations are flattened into
``.fields`` (``{"service": "must match [A-Za-z0-9._-]{1,64}"}``).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Type

import grpc
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2

__all__ = [
    "PortwardenError",
    "Cancelled",
    "Unknown",
    "InvalidArgument",
    "DeadlineExceeded",
    "NotFound",
    "AlreadyExists",
    "PermissionDenied",
    "ResourceExhausted",
    "FailedPrecondition",
    "Aborted",
    "OutOfRange",
    "Unimplemented",
    "Internal",
    "Unavailable",
    "DataLoss",
    "Unauthenticated",
    "from_rpc_error",
]

STATUS_DETAILS_KEY = "grpc-status-details-bin"

# Detail types of google/rpc/error_details.proto, tried in order when unpacking Any details.
_DETAIL_TYPES = (
    error_details_pb2.BadRequest,
    error_details_pb2.ErrorInfo,
    error_details_pb2.PreconditionFailure,
    error_details_pb2.ResourceInfo,
    error_details_pb2.QuotaFailure,
    error_details_pb2.RetryInfo,
    error_details_pb2.DebugInfo,
    error_details_pb2.Help,
    error_details_pb2.LocalizedMessage,
    error_details_pb2.RequestInfo,
)


class PortwardenError(Exception):
    """A call to the portwarden daemon failed.

    Attributes:
        code: the :class:`grpc.StatusCode`.
        message: the server's message (``details()`` in grpcio terms).
        fields: ``{field: description}`` from ``google.rpc.BadRequest`` field violations
            (several violations of one field are joined with ``"; "``).
        details: every decoded ``google.rpc`` detail message (``BadRequest``, ``ErrorInfo``,
            ...); an ``Any`` of an unknown type is kept as is.
        status: the decoded ``google.rpc.Status``, or ``None`` when the server sent none.
        target: the daemon address the call went to, when known.
    """

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(
        self,
        message: str,
        *,
        code: Optional[grpc.StatusCode] = None,
        fields: Optional[Dict[str, str]] = None,
        details: Optional[List[Any]] = None,
        status: Optional[status_pb2.Status] = None,
        target: Optional[str] = None,
    ) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message
        self.fields: Dict[str, str] = dict(fields or {})
        self.details: List[Any] = list(details or [])
        self.status = status
        self.target = target

    def __str__(self) -> str:
        text = f"{self.code.name}: {self.message}"
        # The daemon usually repeats the violations in its message; add only the missing ones.
        missing = [f"{k}: {v}" for k, v in self.fields.items() if f"{k}: {v}" not in self.message]
        if missing:
            text += " (" + "; ".join(missing) + ")"
        return text

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code.name}, message={self.message!r}, fields={self.fields!r})"


class Cancelled(PortwardenError):
    code = grpc.StatusCode.CANCELLED


class Unknown(PortwardenError):
    code = grpc.StatusCode.UNKNOWN


class InvalidArgument(PortwardenError, ValueError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class DeadlineExceeded(PortwardenError, TimeoutError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED


class NotFound(PortwardenError, LookupError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(PortwardenError):
    code = grpc.StatusCode.ALREADY_EXISTS


class PermissionDenied(PortwardenError, PermissionError):
    code = grpc.StatusCode.PERMISSION_DENIED


class ResourceExhausted(PortwardenError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class FailedPrecondition(PortwardenError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class Aborted(PortwardenError):
    code = grpc.StatusCode.ABORTED


class OutOfRange(PortwardenError):
    code = grpc.StatusCode.OUT_OF_RANGE


class Unimplemented(PortwardenError, NotImplementedError):
    code = grpc.StatusCode.UNIMPLEMENTED


class Internal(PortwardenError):
    code = grpc.StatusCode.INTERNAL


class Unavailable(PortwardenError, ConnectionError):
    """The daemon could not be reached (or is shutting down)."""

    code = grpc.StatusCode.UNAVAILABLE


class DataLoss(PortwardenError):
    code = grpc.StatusCode.DATA_LOSS


class Unauthenticated(PortwardenError):
    code = grpc.StatusCode.UNAUTHENTICATED


_BY_CODE: Dict[grpc.StatusCode, Type[PortwardenError]] = {
    cls.code: cls
    for cls in (
        Cancelled,
        Unknown,
        InvalidArgument,
        DeadlineExceeded,
        NotFound,
        AlreadyExists,
        PermissionDenied,
        ResourceExhausted,
        FailedPrecondition,
        Aborted,
        OutOfRange,
        Unimplemented,
        Internal,
        Unavailable,
        DataLoss,
        Unauthenticated,
    )
}


def _unpack_detail(any_msg: Any) -> Any:
    for cls in _DETAIL_TYPES:
        if any_msg.Is(cls.DESCRIPTOR):
            msg = cls()
            any_msg.Unpack(msg)
            return msg
    return any_msg


def decode_status(trailing_metadata: Any) -> Optional[status_pb2.Status]:
    """The ``google.rpc.Status`` in a call's trailers, or ``None``."""
    for key, value in trailing_metadata or ():
        if key == STATUS_DETAILS_KEY:
            if isinstance(value, str):  # grpcio decodes -bin keys to bytes; be lenient anyway
                value = value.encode("latin-1")
            status = status_pb2.Status()
            try:
                status.ParseFromString(value)
            except DecodeError:
                return None
            return status
    return None


def from_rpc_error(err: grpc.RpcError, target: Optional[str] = None) -> PortwardenError:
    """Converts a grpcio error (from a raw stub call) into the matching PortwardenError."""
    code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    message = (err.details() if hasattr(err, "details") else None) or str(err)
    trailers = err.trailing_metadata() if hasattr(err, "trailing_metadata") else None
    status = decode_status(trailers)
    details: List[Any] = []
    fields: Dict[str, str] = {}
    if status is not None:
        if status.message:
            message = status.message
        for any_msg in status.details:
            detail = _unpack_detail(any_msg)
            details.append(detail)
            if isinstance(detail, error_details_pb2.BadRequest):
                for v in detail.field_violations:
                    fields[v.field] = f"{fields[v.field]}; {v.description}" if v.field in fields else v.description
    if code == grpc.StatusCode.UNAVAILABLE and target:
        message = (
            f"cannot reach the portwarden daemon at {target}: {message}"
            " (is `portwarden serve` running? pass addr= or set PORTWARDEN_ADDR)"
        )
    cls = _BY_CODE.get(code, PortwardenError)
    return cls(message, code=code, fields=fields, details=details, status=status, target=target)
