from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CheckStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHECK_STATUS_UNSPECIFIED: _ClassVar[CheckStatus]
    CHECK_STATUS_OK: _ClassVar[CheckStatus]
    CHECK_STATUS_INFO: _ClassVar[CheckStatus]
    CHECK_STATUS_WARNING: _ClassVar[CheckStatus]
    CHECK_STATUS_CRITICAL: _ClassVar[CheckStatus]

class OverallStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OVERALL_STATUS_UNSPECIFIED: _ClassVar[OverallStatus]
    OVERALL_STATUS_HEALTHY: _ClassVar[OverallStatus]
    OVERALL_STATUS_WARNING: _ClassVar[OverallStatus]
    OVERALL_STATUS_CRITICAL: _ClassVar[OverallStatus]
CHECK_STATUS_UNSPECIFIED: CheckStatus
CHECK_STATUS_OK: CheckStatus
CHECK_STATUS_INFO: CheckStatus
CHECK_STATUS_WARNING: CheckStatus
CHECK_STATUS_CRITICAL: CheckStatus
OVERALL_STATUS_UNSPECIFIED: OverallStatus
OVERALL_STATUS_HEALTHY: OverallStatus
OVERALL_STATUS_WARNING: OverallStatus
OVERALL_STATUS_CRITICAL: OverallStatus

class Check(_message.Message):
    __slots__ = ("name", "status", "note", "recommendation", "fields")
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    RECOMMENDATION_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    name: str
    status: CheckStatus
    note: str
    recommendation: str
    fields: _struct_pb2.Struct
    def __init__(self, name: _Optional[str] = ..., status: _Optional[_Union[CheckStatus, str]] = ..., note: _Optional[str] = ..., recommendation: _Optional[str] = ..., fields: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class NetworkReport(_message.Message):
    __slots__ = ("status", "critical_issues", "warnings", "checks", "duration_ms")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CRITICAL_ISSUES_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    CHECKS_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    status: OverallStatus
    critical_issues: _containers.RepeatedScalarFieldContainer[str]
    warnings: _containers.RepeatedScalarFieldContainer[str]
    checks: _containers.RepeatedCompositeFieldContainer[Check]
    duration_ms: float
    def __init__(self, status: _Optional[_Union[OverallStatus, str]] = ..., critical_issues: _Optional[_Iterable[str]] = ..., warnings: _Optional[_Iterable[str]] = ..., checks: _Optional[_Iterable[_Union[Check, _Mapping]]] = ..., duration_ms: _Optional[float] = ...) -> None: ...

class HealthRequest(_message.Message):
    __slots__ = ("port",)
    PORT_FIELD_NUMBER: _ClassVar[int]
    port: int
    def __init__(self, port: _Optional[int] = ...) -> None: ...

class HealthResponse(_message.Message):
    __slots__ = ("report",)
    REPORT_FIELD_NUMBER: _ClassVar[int]
    report: NetworkReport
    def __init__(self, report: _Optional[_Union[NetworkReport, _Mapping]] = ...) -> None: ...

class StatsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class IoCounters(_message.Message):
    __slots__ = ("bytes_sent", "bytes_recv", "packets_sent", "packets_recv", "errors_in", "errors_out", "drops_in", "drops_out")
    BYTES_SENT_FIELD_NUMBER: _ClassVar[int]
    BYTES_RECV_FIELD_NUMBER: _ClassVar[int]
    PACKETS_SENT_FIELD_NUMBER: _ClassVar[int]
    PACKETS_RECV_FIELD_NUMBER: _ClassVar[int]
    ERRORS_IN_FIELD_NUMBER: _ClassVar[int]
    ERRORS_OUT_FIELD_NUMBER: _ClassVar[int]
    DROPS_IN_FIELD_NUMBER: _ClassVar[int]
    DROPS_OUT_FIELD_NUMBER: _ClassVar[int]
    bytes_sent: int
    bytes_recv: int
    packets_sent: int
    packets_recv: int
    errors_in: int
    errors_out: int
    drops_in: int
    drops_out: int
    def __init__(self, bytes_sent: _Optional[int] = ..., bytes_recv: _Optional[int] = ..., packets_sent: _Optional[int] = ..., packets_recv: _Optional[int] = ..., errors_in: _Optional[int] = ..., errors_out: _Optional[int] = ..., drops_in: _Optional[int] = ..., drops_out: _Optional[int] = ...) -> None: ...

class InterfaceCounters(_message.Message):
    __slots__ = ("name", "io")
    NAME_FIELD_NUMBER: _ClassVar[int]
    IO_FIELD_NUMBER: _ClassVar[int]
    name: str
    io: IoCounters
    def __init__(self, name: _Optional[str] = ..., io: _Optional[_Union[IoCounters, _Mapping]] = ...) -> None: ...

class ConnectionCounts(_message.Message):
    __slots__ = ("total", "by_status", "source")
    class ByStatusEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    BY_STATUS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    total: int
    by_status: _containers.ScalarMap[str, int]
    source: str
    def __init__(self, total: _Optional[int] = ..., by_status: _Optional[_Mapping[str, int]] = ..., source: _Optional[str] = ...) -> None: ...

class StatsResponse(_message.Message):
    __slots__ = ("io", "interfaces", "connections")
    IO_FIELD_NUMBER: _ClassVar[int]
    INTERFACES_FIELD_NUMBER: _ClassVar[int]
    CONNECTIONS_FIELD_NUMBER: _ClassVar[int]
    io: IoCounters
    interfaces: _containers.RepeatedCompositeFieldContainer[InterfaceCounters]
    connections: ConnectionCounts
    def __init__(self, io: _Optional[_Union[IoCounters, _Mapping]] = ..., interfaces: _Optional[_Iterable[_Union[InterfaceCounters, _Mapping]]] = ..., connections: _Optional[_Union[ConnectionCounts, _Mapping]] = ...) -> None: ...

class PortExhaustionRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PortExhaustionResponse(_message.Message):
    __slots__ = ("check",)
    CHECK_FIELD_NUMBER: _ClassVar[int]
    check: Check
    def __init__(self, check: _Optional[_Union[Check, _Mapping]] = ...) -> None: ...

class TlsReadinessRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class TlsReadinessResponse(_message.Message):
    __slots__ = ("check",)
    CHECK_FIELD_NUMBER: _ClassVar[int]
    check: Check
    def __init__(self, check: _Optional[_Union[Check, _Mapping]] = ...) -> None: ...
