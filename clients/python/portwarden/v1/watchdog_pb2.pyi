import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from . import network_pb2 as _network_pb2
from . import ports_pb2 as _ports_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EventKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVENT_KIND_UNSPECIFIED: _ClassVar[EventKind]
    EVENT_KIND_ALLOCATED: _ClassVar[EventKind]
    EVENT_KIND_RELEASED: _ClassVar[EventKind]
    EVENT_KIND_RENEWED: _ClassVar[EventKind]
    EVENT_KIND_HEALTH_CHANGED: _ClassVar[EventKind]
    EVENT_KIND_RECLAIMED: _ClassVar[EventKind]
    EVENT_KIND_NETWORK_ISSUE: _ClassVar[EventKind]
    EVENT_KIND_SQUATTER_SEEN: _ClassVar[EventKind]
    EVENT_KIND_SQUATTER_GONE: _ClassVar[EventKind]
    EVENT_KIND_OUTSIDE_LISTENER_SEEN: _ClassVar[EventKind]
    EVENT_KIND_OUTSIDE_LISTENER_GONE: _ClassVar[EventKind]
    EVENT_KIND_CONNECTIONS_LEAKING: _ClassVar[EventKind]
    EVENT_KIND_NETWORK_STATUS_CHANGED: _ClassVar[EventKind]
    EVENT_KIND_PASS_COMPLETED: _ClassVar[EventKind]
EVENT_KIND_UNSPECIFIED: EventKind
EVENT_KIND_ALLOCATED: EventKind
EVENT_KIND_RELEASED: EventKind
EVENT_KIND_RENEWED: EventKind
EVENT_KIND_HEALTH_CHANGED: EventKind
EVENT_KIND_RECLAIMED: EventKind
EVENT_KIND_NETWORK_ISSUE: EventKind
EVENT_KIND_SQUATTER_SEEN: EventKind
EVENT_KIND_SQUATTER_GONE: EventKind
EVENT_KIND_OUTSIDE_LISTENER_SEEN: EventKind
EVENT_KIND_OUTSIDE_LISTENER_GONE: EventKind
EVENT_KIND_CONNECTIONS_LEAKING: EventKind
EVENT_KIND_NETWORK_STATUS_CHANGED: EventKind
EVENT_KIND_PASS_COMPLETED: EventKind

class WatchdogStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class IoRates(_message.Message):
    __slots__ = ("bytes_sent_per_second", "bytes_recv_per_second", "packets_sent_per_second", "packets_recv_per_second", "errors_in_per_second", "errors_out_per_second", "drops_in_per_second", "drops_out_per_second")
    BYTES_SENT_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    BYTES_RECV_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    PACKETS_SENT_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    PACKETS_RECV_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    ERRORS_IN_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    ERRORS_OUT_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    DROPS_IN_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    DROPS_OUT_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    bytes_sent_per_second: float
    bytes_recv_per_second: float
    packets_sent_per_second: float
    packets_recv_per_second: float
    errors_in_per_second: float
    errors_out_per_second: float
    drops_in_per_second: float
    drops_out_per_second: float
    def __init__(self, bytes_sent_per_second: _Optional[float] = ..., bytes_recv_per_second: _Optional[float] = ..., packets_sent_per_second: _Optional[float] = ..., packets_recv_per_second: _Optional[float] = ..., errors_in_per_second: _Optional[float] = ..., errors_out_per_second: _Optional[float] = ..., drops_in_per_second: _Optional[float] = ..., drops_out_per_second: _Optional[float] = ...) -> None: ...

class InterfaceRates(_message.Message):
    __slots__ = ("name", "rates")
    NAME_FIELD_NUMBER: _ClassVar[int]
    RATES_FIELD_NUMBER: _ClassVar[int]
    name: str
    rates: IoRates
    def __init__(self, name: _Optional[str] = ..., rates: _Optional[_Union[IoRates, _Mapping]] = ...) -> None: ...

class WatchdogStatusResponse(_message.Message):
    __slots__ = ("running", "interval_seconds", "checks_performed", "issues_detected", "reclaimed", "last_run", "last_run_duration_ms", "subscribers", "oldest_retained_sequence", "last_sequence", "network_status", "io_rates", "interface_rates", "io_rates_interval_seconds", "unknown_owner_checks", "interval_ms")
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CHECKS_PERFORMED_FIELD_NUMBER: _ClassVar[int]
    ISSUES_DETECTED_FIELD_NUMBER: _ClassVar[int]
    RECLAIMED_FIELD_NUMBER: _ClassVar[int]
    LAST_RUN_FIELD_NUMBER: _ClassVar[int]
    LAST_RUN_DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIBERS_FIELD_NUMBER: _ClassVar[int]
    OLDEST_RETAINED_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    NETWORK_STATUS_FIELD_NUMBER: _ClassVar[int]
    IO_RATES_FIELD_NUMBER: _ClassVar[int]
    INTERFACE_RATES_FIELD_NUMBER: _ClassVar[int]
    IO_RATES_INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    UNKNOWN_OWNER_CHECKS_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    running: bool
    interval_seconds: int
    checks_performed: int
    issues_detected: int
    reclaimed: int
    last_run: _timestamp_pb2.Timestamp
    last_run_duration_ms: float
    subscribers: int
    oldest_retained_sequence: int
    last_sequence: int
    network_status: _network_pb2.OverallStatus
    io_rates: IoRates
    interface_rates: _containers.RepeatedCompositeFieldContainer[InterfaceRates]
    io_rates_interval_seconds: float
    unknown_owner_checks: int
    interval_ms: int
    def __init__(self, running: bool = ..., interval_seconds: _Optional[int] = ..., checks_performed: _Optional[int] = ..., issues_detected: _Optional[int] = ..., reclaimed: _Optional[int] = ..., last_run: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_run_duration_ms: _Optional[float] = ..., subscribers: _Optional[int] = ..., oldest_retained_sequence: _Optional[int] = ..., last_sequence: _Optional[int] = ..., network_status: _Optional[_Union[_network_pb2.OverallStatus, str]] = ..., io_rates: _Optional[_Union[IoRates, _Mapping]] = ..., interface_rates: _Optional[_Iterable[_Union[InterfaceRates, _Mapping]]] = ..., io_rates_interval_seconds: _Optional[float] = ..., unknown_owner_checks: _Optional[int] = ..., interval_ms: _Optional[int] = ...) -> None: ...

class WatchRequest(_message.Message):
    __slots__ = ("kinds", "service", "port", "since_sequence", "snapshot")
    KINDS_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    SINCE_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    kinds: _containers.RepeatedScalarFieldContainer[EventKind]
    service: str
    port: int
    since_sequence: int
    snapshot: bool
    def __init__(self, kinds: _Optional[_Iterable[_Union[EventKind, str]]] = ..., service: _Optional[str] = ..., port: _Optional[int] = ..., since_sequence: _Optional[int] = ..., snapshot: bool = ...) -> None: ...

class WatchdogEvent(_message.Message):
    __slots__ = ("kind", "at", "port", "service", "message", "health", "sequence", "previous_health", "reason", "allocation", "details")
    KIND_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_HEALTH_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ALLOCATION_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    kind: EventKind
    at: _timestamp_pb2.Timestamp
    port: int
    service: str
    message: str
    health: _ports_pb2.Health
    sequence: int
    previous_health: _ports_pb2.Health
    reason: str
    allocation: _ports_pb2.Allocation
    details: _struct_pb2.Struct
    def __init__(self, kind: _Optional[_Union[EventKind, str]] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., port: _Optional[int] = ..., service: _Optional[str] = ..., message: _Optional[str] = ..., health: _Optional[_Union[_ports_pb2.Health, str]] = ..., sequence: _Optional[int] = ..., previous_health: _Optional[_Union[_ports_pb2.Health, str]] = ..., reason: _Optional[str] = ..., allocation: _Optional[_Union[_ports_pb2.Allocation, _Mapping]] = ..., details: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class OverviewRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class OverviewResponse(_message.Message):
    __slots__ = ("ports", "allocations", "watchdog", "network", "network_error_code", "network_error")
    PORTS_FIELD_NUMBER: _ClassVar[int]
    ALLOCATIONS_FIELD_NUMBER: _ClassVar[int]
    WATCHDOG_FIELD_NUMBER: _ClassVar[int]
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    NETWORK_ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    NETWORK_ERROR_FIELD_NUMBER: _ClassVar[int]
    ports: _ports_pb2.StatusResponse
    allocations: _containers.RepeatedCompositeFieldContainer[_ports_pb2.Allocation]
    watchdog: WatchdogStatusResponse
    network: _network_pb2.NetworkReport
    network_error_code: int
    network_error: str
    def __init__(self, ports: _Optional[_Union[_ports_pb2.StatusResponse, _Mapping]] = ..., allocations: _Optional[_Iterable[_Union[_ports_pb2.Allocation, _Mapping]]] = ..., watchdog: _Optional[_Union[WatchdogStatusResponse, _Mapping]] = ..., network: _Optional[_Union[_network_pb2.NetworkReport, _Mapping]] = ..., network_error_code: _Optional[int] = ..., network_error: _Optional[str] = ...) -> None: ...

class WatchResponse(_message.Message):
    __slots__ = ("event", "existing", "snapshot_complete", "snapshot_sequence")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    EXISTING_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_COMPLETE_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    event: WatchdogEvent
    existing: _ports_pb2.Allocation
    snapshot_complete: bool
    snapshot_sequence: int
    def __init__(self, event: _Optional[_Union[WatchdogEvent, _Mapping]] = ..., existing: _Optional[_Union[_ports_pb2.Allocation, _Mapping]] = ..., snapshot_complete: bool = ..., snapshot_sequence: _Optional[int] = ...) -> None: ...

class HistoryRequest(_message.Message):
    __slots__ = ("port", "service", "kinds", "page_size", "page_token")
    PORT_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    KINDS_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    port: int
    service: str
    kinds: _containers.RepeatedScalarFieldContainer[EventKind]
    page_size: int
    page_token: str
    def __init__(self, port: _Optional[int] = ..., service: _Optional[str] = ..., kinds: _Optional[_Iterable[_Union[EventKind, str]]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class HistoryResponse(_message.Message):
    __slots__ = ("events", "next_page_token")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[WatchdogEvent]
    next_page_token: str
    def __init__(self, events: _Optional[_Iterable[_Union[WatchdogEvent, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...
