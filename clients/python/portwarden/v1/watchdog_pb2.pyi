import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
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
EVENT_KIND_UNSPECIFIED: EventKind
EVENT_KIND_ALLOCATED: EventKind
EVENT_KIND_RELEASED: EventKind
EVENT_KIND_RENEWED: EventKind
EVENT_KIND_HEALTH_CHANGED: EventKind
EVENT_KIND_RECLAIMED: EventKind
EVENT_KIND_NETWORK_ISSUE: EventKind

class WatchdogStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WatchdogStatusResponse(_message.Message):
    __slots__ = ("running", "interval_seconds", "checks_performed", "issues_detected", "reclaimed", "last_run")
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CHECKS_PERFORMED_FIELD_NUMBER: _ClassVar[int]
    ISSUES_DETECTED_FIELD_NUMBER: _ClassVar[int]
    RECLAIMED_FIELD_NUMBER: _ClassVar[int]
    LAST_RUN_FIELD_NUMBER: _ClassVar[int]
    running: bool
    interval_seconds: int
    checks_performed: int
    issues_detected: int
    reclaimed: int
    last_run: _timestamp_pb2.Timestamp
    def __init__(self, running: bool = ..., interval_seconds: _Optional[int] = ..., checks_performed: _Optional[int] = ..., issues_detected: _Optional[int] = ..., reclaimed: _Optional[int] = ..., last_run: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class WatchRequest(_message.Message):
    __slots__ = ("kinds",)
    KINDS_FIELD_NUMBER: _ClassVar[int]
    kinds: _containers.RepeatedScalarFieldContainer[EventKind]
    def __init__(self, kinds: _Optional[_Iterable[_Union[EventKind, str]]] = ...) -> None: ...

class WatchdogEvent(_message.Message):
    __slots__ = ("kind", "at", "port", "service", "message", "health")
    KIND_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    kind: EventKind
    at: _timestamp_pb2.Timestamp
    port: int
    service: str
    message: str
    health: _ports_pb2.Health
    def __init__(self, kind: _Optional[_Union[EventKind, str]] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., port: _Optional[int] = ..., service: _Optional[str] = ..., message: _Optional[str] = ..., health: _Optional[_Union[_ports_pb2.Health, str]] = ...) -> None: ...

class WatchResponse(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: WatchdogEvent
    def __init__(self, event: _Optional[_Union[WatchdogEvent, _Mapping]] = ...) -> None: ...
