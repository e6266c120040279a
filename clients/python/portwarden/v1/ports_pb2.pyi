import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from . import network_pb2 as _network_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Health(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    HEALTH_UNSPECIFIED: _ClassVar[Health]
    HEALTH_ALLOCATED: _ClassVar[Health]
    HEALTH_ACTIVE: _ClassVar[Health]
    HEALTH_UNHEALTHY: _ClassVar[Health]
    HEALTH_DEAD: _ClassVar[Health]

class OwnerKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OWNER_KIND_UNSPECIFIED: _ClassVar[OwnerKind]
    OWNER_KIND_PERMANENT: _ClassVar[OwnerKind]
    OWNER_KIND_PROCESS: _ClassVar[OwnerKind]
    OWNER_KIND_LEASE: _ClassVar[OwnerKind]
    OWNER_KIND_PROCESS_AND_LEASE: _ClassVar[OwnerKind]

class Pool(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    POOL_UNSPECIFIED: _ClassVar[Pool]
    POOL_SERVICE: _ClassVar[Pool]
    POOL_TEST: _ClassVar[Pool]

class PortState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PORT_STATE_UNSPECIFIED: _ClassVar[PortState]
    PORT_STATE_FREE: _ClassVar[PortState]
    PORT_STATE_ALLOCATED: _ClassVar[PortState]
    PORT_STATE_QUARANTINED: _ClassVar[PortState]
    PORT_STATE_IN_USE: _ClassVar[PortState]
    PORT_STATE_BLOCKED: _ClassVar[PortState]
    PORT_STATE_OUTSIDE_RANGE: _ClassVar[PortState]
    PORT_STATE_UNKNOWN: _ClassVar[PortState]

class ProjectPortState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PROJECT_PORT_STATE_UNSPECIFIED: _ClassVar[ProjectPortState]
    PROJECT_PORT_STATE_HELD: _ClassVar[ProjectPortState]
    PROJECT_PORT_STATE_FREE: _ClassVar[ProjectPortState]
    PROJECT_PORT_STATE_TAKEN: _ClassVar[ProjectPortState]
HEALTH_UNSPECIFIED: Health
HEALTH_ALLOCATED: Health
HEALTH_ACTIVE: Health
HEALTH_UNHEALTHY: Health
HEALTH_DEAD: Health
OWNER_KIND_UNSPECIFIED: OwnerKind
OWNER_KIND_PERMANENT: OwnerKind
OWNER_KIND_PROCESS: OwnerKind
OWNER_KIND_LEASE: OwnerKind
OWNER_KIND_PROCESS_AND_LEASE: OwnerKind
POOL_UNSPECIFIED: Pool
POOL_SERVICE: Pool
POOL_TEST: Pool
PORT_STATE_UNSPECIFIED: PortState
PORT_STATE_FREE: PortState
PORT_STATE_ALLOCATED: PortState
PORT_STATE_QUARANTINED: PortState
PORT_STATE_IN_USE: PortState
PORT_STATE_BLOCKED: PortState
PORT_STATE_OUTSIDE_RANGE: PortState
PORT_STATE_UNKNOWN: PortState
PROJECT_PORT_STATE_UNSPECIFIED: ProjectPortState
PROJECT_PORT_STATE_HELD: ProjectPortState
PROJECT_PORT_STATE_FREE: ProjectPortState
PROJECT_PORT_STATE_TAKEN: ProjectPortState

class Allocation(_message.Message):
    __slots__ = ("port", "service", "purpose", "started_by", "pid", "pid_start_time", "labels", "allocated_at", "expires_at", "ttl_seconds", "health", "owner_kind", "request_count", "error_count", "owner_uid", "renewed_at", "network_health", "observed")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    PORT_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    STARTED_BY_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    PID_START_TIME_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    ALLOCATED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    OWNER_KIND_FIELD_NUMBER: _ClassVar[int]
    REQUEST_COUNT_FIELD_NUMBER: _ClassVar[int]
    ERROR_COUNT_FIELD_NUMBER: _ClassVar[int]
    OWNER_UID_FIELD_NUMBER: _ClassVar[int]
    RENEWED_AT_FIELD_NUMBER: _ClassVar[int]
    NETWORK_HEALTH_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_FIELD_NUMBER: _ClassVar[int]
    port: int
    service: str
    purpose: str
    started_by: str
    pid: int
    pid_start_time: int
    labels: _containers.ScalarMap[str, str]
    allocated_at: _timestamp_pb2.Timestamp
    expires_at: _timestamp_pb2.Timestamp
    ttl_seconds: int
    health: Health
    owner_kind: OwnerKind
    request_count: int
    error_count: int
    owner_uid: int
    renewed_at: _timestamp_pb2.Timestamp
    network_health: _network_pb2.OverallStatus
    observed: Observation
    def __init__(self, port: _Optional[int] = ..., service: _Optional[str] = ..., purpose: _Optional[str] = ..., started_by: _Optional[str] = ..., pid: _Optional[int] = ..., pid_start_time: _Optional[int] = ..., labels: _Optional[_Mapping[str, str]] = ..., allocated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ttl_seconds: _Optional[int] = ..., health: _Optional[_Union[Health, str]] = ..., owner_kind: _Optional[_Union[OwnerKind, str]] = ..., request_count: _Optional[int] = ..., error_count: _Optional[int] = ..., owner_uid: _Optional[int] = ..., renewed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., network_health: _Optional[_Union[_network_pb2.OverallStatus, str]] = ..., observed: _Optional[_Union[Observation, _Mapping]] = ...) -> None: ...

class Observation(_message.Message):
    __slots__ = ("at", "listener", "squatters", "connections", "process")
    class ConnectionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    AT_FIELD_NUMBER: _ClassVar[int]
    LISTENER_FIELD_NUMBER: _ClassVar[int]
    SQUATTERS_FIELD_NUMBER: _ClassVar[int]
    CONNECTIONS_FIELD_NUMBER: _ClassVar[int]
    PROCESS_FIELD_NUMBER: _ClassVar[int]
    at: _timestamp_pb2.Timestamp
    listener: str
    squatters: _containers.RepeatedScalarFieldContainer[str]
    connections: _containers.ScalarMap[str, int]
    process: ProcessStats
    def __init__(self, at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., listener: _Optional[str] = ..., squatters: _Optional[_Iterable[str]] = ..., connections: _Optional[_Mapping[str, int]] = ..., process: _Optional[_Union[ProcessStats, _Mapping]] = ...) -> None: ...

class ProcessStats(_message.Message):
    __slots__ = ("name", "cmdline", "rss_bytes", "cpu_percent")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CMDLINE_FIELD_NUMBER: _ClassVar[int]
    RSS_BYTES_FIELD_NUMBER: _ClassVar[int]
    CPU_PERCENT_FIELD_NUMBER: _ClassVar[int]
    name: str
    cmdline: str
    rss_bytes: int
    cpu_percent: float
    def __init__(self, name: _Optional[str] = ..., cmdline: _Optional[str] = ..., rss_bytes: _Optional[int] = ..., cpu_percent: _Optional[float] = ...) -> None: ...

class AllocateRequest(_message.Message):
    __slots__ = ("service", "purpose", "started_by", "pid", "port", "ttl_seconds", "labels", "owner_is_caller", "reuse", "prefer", "pool", "project")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    STARTED_BY_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    OWNER_IS_CALLER_FIELD_NUMBER: _ClassVar[int]
    REUSE_FIELD_NUMBER: _ClassVar[int]
    PREFER_FIELD_NUMBER: _ClassVar[int]
    POOL_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    service: str
    purpose: str
    started_by: str
    pid: int
    port: int
    ttl_seconds: int
    labels: _containers.ScalarMap[str, str]
    owner_is_caller: bool
    reuse: bool
    prefer: int
    pool: Pool
    project: str
    def __init__(self, service: _Optional[str] = ..., purpose: _Optional[str] = ..., started_by: _Optional[str] = ..., pid: _Optional[int] = ..., port: _Optional[int] = ..., ttl_seconds: _Optional[int] = ..., labels: _Optional[_Mapping[str, str]] = ..., owner_is_caller: bool = ..., reuse: bool = ..., prefer: _Optional[int] = ..., pool: _Optional[_Union[Pool, str]] = ..., project: _Optional[str] = ...) -> None: ...

class AllocateResponse(_message.Message):
    __slots__ = ("allocation", "lease_token", "network_health", "warnings", "network_report", "reused")
    ALLOCATION_FIELD_NUMBER: _ClassVar[int]
    LEASE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    NETWORK_HEALTH_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    NETWORK_REPORT_FIELD_NUMBER: _ClassVar[int]
    REUSED_FIELD_NUMBER: _ClassVar[int]
    allocation: Allocation
    lease_token: str
    network_health: _network_pb2.OverallStatus
    warnings: _containers.RepeatedScalarFieldContainer[str]
    network_report: _network_pb2.NetworkReport
    reused: bool
    def __init__(self, allocation: _Optional[_Union[Allocation, _Mapping]] = ..., lease_token: _Optional[str] = ..., network_health: _Optional[_Union[_network_pb2.OverallStatus, str]] = ..., warnings: _Optional[_Iterable[str]] = ..., network_report: _Optional[_Union[_network_pb2.NetworkReport, _Mapping]] = ..., reused: bool = ...) -> None: ...

class ReleaseRequest(_message.Message):
    __slots__ = ("port", "lease_token")
    PORT_FIELD_NUMBER: _ClassVar[int]
    LEASE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    port: int
    lease_token: str
    def __init__(self, port: _Optional[int] = ..., lease_token: _Optional[str] = ...) -> None: ...

class ReleaseResponse(_message.Message):
    __slots__ = ("allocation", "quarantined_until")
    ALLOCATION_FIELD_NUMBER: _ClassVar[int]
    QUARANTINED_UNTIL_FIELD_NUMBER: _ClassVar[int]
    allocation: Allocation
    quarantined_until: _timestamp_pb2.Timestamp
    def __init__(self, allocation: _Optional[_Union[Allocation, _Mapping]] = ..., quarantined_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RenewRequest(_message.Message):
    __slots__ = ("port", "lease_token", "ttl_seconds", "requests_delta", "errors_delta", "convert_to_lease")
    PORT_FIELD_NUMBER: _ClassVar[int]
    LEASE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_DELTA_FIELD_NUMBER: _ClassVar[int]
    ERRORS_DELTA_FIELD_NUMBER: _ClassVar[int]
    CONVERT_TO_LEASE_FIELD_NUMBER: _ClassVar[int]
    port: int
    lease_token: str
    ttl_seconds: int
    requests_delta: int
    errors_delta: int
    convert_to_lease: bool
    def __init__(self, port: _Optional[int] = ..., lease_token: _Optional[str] = ..., ttl_seconds: _Optional[int] = ..., requests_delta: _Optional[int] = ..., errors_delta: _Optional[int] = ..., convert_to_lease: bool = ...) -> None: ...

class RenewResponse(_message.Message):
    __slots__ = ("allocation",)
    ALLOCATION_FIELD_NUMBER: _ClassVar[int]
    allocation: Allocation
    def __init__(self, allocation: _Optional[_Union[Allocation, _Mapping]] = ...) -> None: ...

class GetRequest(_message.Message):
    __slots__ = ("port",)
    PORT_FIELD_NUMBER: _ClassVar[int]
    port: int
    def __init__(self, port: _Optional[int] = ...) -> None: ...

class GetResponse(_message.Message):
    __slots__ = ("allocation",)
    ALLOCATION_FIELD_NUMBER: _ClassVar[int]
    allocation: Allocation
    def __init__(self, allocation: _Optional[_Union[Allocation, _Mapping]] = ...) -> None: ...

class ListRequest(_message.Message):
    __slots__ = ("service",)
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    service: str
    def __init__(self, service: _Optional[str] = ...) -> None: ...

class ListResponse(_message.Message):
    __slots__ = ("allocations",)
    ALLOCATIONS_FIELD_NUMBER: _ClassVar[int]
    allocations: _containers.RepeatedCompositeFieldContainer[Allocation]
    def __init__(self, allocations: _Optional[_Iterable[_Union[Allocation, _Mapping]]] = ...) -> None: ...

class StatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PortRange(_message.Message):
    __slots__ = ("start", "end")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    start: int
    end: int
    def __init__(self, start: _Optional[int] = ..., end: _Optional[int] = ...) -> None: ...

class StatusResponse(_message.Message):
    __slots__ = ("ranges", "total", "allocated", "available", "quarantined", "unavailable", "quarantine_seconds", "warnings", "daemon", "test_pool")
    RANGES_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    ALLOCATED_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    QUARANTINED_FIELD_NUMBER: _ClassVar[int]
    UNAVAILABLE_FIELD_NUMBER: _ClassVar[int]
    QUARANTINE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    DAEMON_FIELD_NUMBER: _ClassVar[int]
    TEST_POOL_FIELD_NUMBER: _ClassVar[int]
    ranges: _containers.RepeatedCompositeFieldContainer[PortRange]
    total: int
    allocated: int
    available: int
    quarantined: int
    unavailable: int
    quarantine_seconds: int
    warnings: _containers.RepeatedScalarFieldContainer[str]
    daemon: DaemonInfo
    test_pool: TestPoolStatus
    def __init__(self, ranges: _Optional[_Iterable[_Union[PortRange, _Mapping]]] = ..., total: _Optional[int] = ..., allocated: _Optional[int] = ..., available: _Optional[int] = ..., quarantined: _Optional[int] = ..., unavailable: _Optional[int] = ..., quarantine_seconds: _Optional[int] = ..., warnings: _Optional[_Iterable[str]] = ..., daemon: _Optional[_Union[DaemonInfo, _Mapping]] = ..., test_pool: _Optional[_Union[TestPoolStatus, _Mapping]] = ...) -> None: ...

class TestPoolStatus(_message.Message):
    __slots__ = ("ranges", "total", "allocated", "available", "resting", "unavailable")
    RANGES_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    ALLOCATED_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    RESTING_FIELD_NUMBER: _ClassVar[int]
    UNAVAILABLE_FIELD_NUMBER: _ClassVar[int]
    ranges: _containers.RepeatedCompositeFieldContainer[PortRange]
    total: int
    allocated: int
    available: int
    resting: int
    unavailable: int
    def __init__(self, ranges: _Optional[_Iterable[_Union[PortRange, _Mapping]]] = ..., total: _Optional[int] = ..., allocated: _Optional[int] = ..., available: _Optional[int] = ..., resting: _Optional[int] = ..., unavailable: _Optional[int] = ...) -> None: ...

class DaemonInfo(_message.Message):
    __slots__ = ("version", "started_at", "listeners", "state_path", "pid")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    LISTENERS_FIELD_NUMBER: _ClassVar[int]
    STATE_PATH_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    version: str
    started_at: _timestamp_pb2.Timestamp
    listeners: _containers.RepeatedScalarFieldContainer[str]
    state_path: str
    pid: int
    def __init__(self, version: _Optional[str] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., listeners: _Optional[_Iterable[str]] = ..., state_path: _Optional[str] = ..., pid: _Optional[int] = ...) -> None: ...

class CheckPortsRequest(_message.Message):
    __slots__ = ("ports",)
    PORTS_FIELD_NUMBER: _ClassVar[int]
    ports: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, ports: _Optional[_Iterable[int]] = ...) -> None: ...

class PortCheck(_message.Message):
    __slots__ = ("port", "state", "reason", "in_managed_range", "holder")
    PORT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    IN_MANAGED_RANGE_FIELD_NUMBER: _ClassVar[int]
    HOLDER_FIELD_NUMBER: _ClassVar[int]
    port: int
    state: PortState
    reason: str
    in_managed_range: bool
    holder: str
    def __init__(self, port: _Optional[int] = ..., state: _Optional[_Union[PortState, str]] = ..., reason: _Optional[str] = ..., in_managed_range: bool = ..., holder: _Optional[str] = ...) -> None: ...

class CheckPortsResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[PortCheck]
    def __init__(self, results: _Optional[_Iterable[_Union[PortCheck, _Mapping]]] = ...) -> None: ...

class ListProjectPortsRequest(_message.Message):
    __slots__ = ("project",)
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    project: str
    def __init__(self, project: _Optional[str] = ...) -> None: ...

class ListProjectPortsResponse(_message.Message):
    __slots__ = ("ports",)
    PORTS_FIELD_NUMBER: _ClassVar[int]
    ports: _containers.RepeatedCompositeFieldContainer[ProjectPort]
    def __init__(self, ports: _Optional[_Iterable[_Union[ProjectPort, _Mapping]]] = ...) -> None: ...

class ProjectPort(_message.Message):
    __slots__ = ("project", "name", "port", "service", "state", "allocation", "holder", "owner_uid", "updated_at")
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ALLOCATION_FIELD_NUMBER: _ClassVar[int]
    HOLDER_FIELD_NUMBER: _ClassVar[int]
    OWNER_UID_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    project: str
    name: str
    port: int
    service: str
    state: ProjectPortState
    allocation: Allocation
    holder: str
    owner_uid: int
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, project: _Optional[str] = ..., name: _Optional[str] = ..., port: _Optional[int] = ..., service: _Optional[str] = ..., state: _Optional[_Union[ProjectPortState, str]] = ..., allocation: _Optional[_Union[Allocation, _Mapping]] = ..., holder: _Optional[str] = ..., owner_uid: _Optional[int] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ForgetProjectRequest(_message.Message):
    __slots__ = ("project",)
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    project: str
    def __init__(self, project: _Optional[str] = ...) -> None: ...

class ForgetProjectResponse(_message.Message):
    __slots__ = ("forgotten", "released")
    FORGOTTEN_FIELD_NUMBER: _ClassVar[int]
    RELEASED_FIELD_NUMBER: _ClassVar[int]
    forgotten: _containers.RepeatedCompositeFieldContainer[ProjectPort]
    released: _containers.RepeatedCompositeFieldContainer[Allocation]
    def __init__(self, forgotten: _Optional[_Iterable[_Union[ProjectPort, _Mapping]]] = ..., released: _Optional[_Iterable[_Union[Allocation, _Mapping]]] = ...) -> None: ...
