"""What the client returns: the daemon's JSON vocabulary as Python values.

Each dataclass has the same field names as the JSON object REST, the event stream and every
``--json`` output carry (see docs/cli-json.md); enumerations are :class:`enum.Enum` members whose
``value`` is the JSON spelling, timestamps are timezone-aware :class:`datetime.datetime` in UTC
(millisecond precision), and a field that is null in JSON is ``None`` here.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, ClassVar, Dict, List, Optional, Union

from google.protobuf import json_format

from .v1 import network_pb2, ports_pb2, watchdog_pb2

__all__ = [
    "Allocation",
    "Event",
    "EventKind",
    "Existing",
    "Health",
    "Observed",
    "OverallStatus",
    "OwnerKind",
    "PortCheck",
    "PortState",
    "ProcessStats",
    "Released",
    "SnapshotComplete",
]


class _Wire(str, enum.Enum):
    """An enumeration whose values are the JSON spellings (``OwnerKind("lease")`` works)."""

    def __str__(self) -> str:
        return self.value

    @classmethod
    def _from_proto(cls, enum_type: Any, prefix: str, number: int) -> Optional["_Wire"]:
        """The member for a protobuf enum value (``OWNER_KIND_LEASE`` -> ``lease``); ``None`` for
        the unspecified value and for numbers this client does not know."""
        try:
            name = enum_type.Name(number)
        except ValueError:
            return None
        try:
            return cls(name[len(prefix) :].lower())
        except ValueError:
            return None


class OwnerKind(_Wire):
    """What keeps an allocation."""

    PERMANENT = "permanent"
    PROCESS = "process"
    LEASE = "lease"
    PROCESS_AND_LEASE = "process_and_lease"


class Health(_Wire):
    ALLOCATED = "allocated"
    ACTIVE = "active"
    UNHEALTHY = "unhealthy"
    DEAD = "dead"


class OverallStatus(_Wire):
    """The overall status of network checks."""

    HEALTHY = "healthy"
    WARNING = "warning"
    CRITICAL = "critical"


class PortState(_Wire):
    """The free check's verdict on one port."""

    FREE = "free"
    ALLOCATED = "allocated"
    QUARANTINED = "quarantined"
    IN_USE = "in_use"
    BLOCKED = "blocked"
    OUTSIDE_RANGE = "outside_range"
    UNKNOWN = "unknown"


class EventKind(_Wire):
    ALLOCATED = "allocated"
    RELEASED = "released"
    RENEWED = "renewed"
    HEALTH_CHANGED = "health_changed"
    RECLAIMED = "reclaimed"
    SQUATTER_SEEN = "squatter_seen"
    SQUATTER_GONE = "squatter_gone"
    OUTSIDE_LISTENER_SEEN = "outside_listener_seen"
    OUTSIDE_LISTENER_GONE = "outside_listener_gone"
    CONNECTIONS_LEAKING = "connections_leaking"
    NETWORK_STATUS_CHANGED = "network_status_changed"
    PASS_COMPLETED = "pass_completed"


def _time(msg: Any, name: str) -> Optional[datetime]:
    """A Timestamp field as an aware UTC datetime at the wire's millisecond precision."""
    if not msg.HasField(name):
        return None
    ts = getattr(msg, name)
    millis = ts.seconds * 1000 + ts.nanos // 1_000_000
    return datetime.fromtimestamp(millis / 1000, tz=timezone.utc).replace(microsecond=(millis % 1000) * 1000)


def _optional(msg: Any, name: str) -> Optional[int]:
    return getattr(msg, name) if msg.HasField(name) else None


def _whole(value: Any) -> Any:
    """JSON numbers through google.protobuf.Struct come back as floats; every number the daemon
    puts there is whole (counts, pids, milliseconds), so they become ints again."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_whole(v) for v in value]
    if isinstance(value, dict):
        return {k: _whole(v) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class ProcessStats:
    """The owning process as the watchdog last saw it."""

    name: str
    cmdline: str
    rss_bytes: int
    #: CPU use since the previous pass, percent of one core.
    cpu_percent: float


@dataclass(frozen=True)
class Observed:
    """One watchdog pass's view of an allocated port."""

    at: Optional[datetime]
    #: ``nobody``, ``owner``, ``unverified`` or ``squatter``.
    listener: str
    squatters: List[str]
    #: Sockets on the port by TCP state, listeners excluded.
    connections: Dict[str, int]
    process: Optional[ProcessStats]

    @classmethod
    def from_proto(cls, o: ports_pb2.Observation) -> "Observed":
        process = None
        if o.HasField("process"):
            p = o.process
            process = ProcessStats(name=p.name, cmdline=p.cmdline, rss_bytes=p.rss_bytes, cpu_percent=p.cpu_percent)
        return cls(
            at=_time(o, "at"),
            listener=o.listener,
            squatters=list(o.squatters),
            connections=dict(o.connections),
            process=process,
        )


@dataclass(frozen=True)
class Allocation:
    """One allocation and everything recorded about it (never its lease token)."""

    port: int
    service: str
    purpose: str
    started_by: str
    #: Owning process; ``None`` when none.
    pid: Optional[int]
    #: Start time of the owning process in clock ticks since boot; ``None`` without a process.
    pid_start_time: Optional[int]
    #: uid of the user who allocated (0 is root); ``None`` when the daemon could not tell.
    owner_uid: Optional[int]
    labels: Dict[str, str]
    allocated_at: datetime
    renewed_at: Optional[datetime]
    #: When a lease runs out unless renewed; ``None`` without a TTL.
    expires_at: Optional[datetime]
    ttl_seconds: Optional[int]
    health: Health
    owner_kind: OwnerKind
    request_count: int
    error_count: int
    #: Overall status of the network checks run before allocation; ``None`` when none ran.
    network_health: Optional[OverallStatus]
    #: What the watchdog saw at its last pass; ``None`` before the first (and in events).
    observed: Optional[Observed]

    @classmethod
    def from_proto(cls, a: ports_pb2.Allocation) -> "Allocation":
        allocated_at = _time(a, "allocated_at") or datetime.fromtimestamp(0, tz=timezone.utc)
        return cls(
            port=a.port,
            service=a.service,
            purpose=a.purpose,
            started_by=a.started_by,
            pid=_optional(a, "pid"),
            pid_start_time=_optional(a, "pid_start_time"),
            owner_uid=_optional(a, "owner_uid"),
            labels=dict(a.labels),
            allocated_at=allocated_at,
            renewed_at=_time(a, "renewed_at"),
            expires_at=_time(a, "expires_at"),
            ttl_seconds=_optional(a, "ttl_seconds"),
            # A daemon always sends both; one that did not is read as the least claim (as the CLI).
            health=Health._from_proto(ports_pb2.Health, "HEALTH_", a.health) or Health.ALLOCATED,
            owner_kind=OwnerKind._from_proto(ports_pb2.OwnerKind, "OWNER_KIND_", a.owner_kind) or OwnerKind.PERMANENT,
            request_count=a.request_count,
            error_count=a.error_count,
            network_health=_overall(a.network_health),
            observed=Observed.from_proto(a.observed) if a.HasField("observed") else None,
        )


def _overall(number: int) -> Optional[OverallStatus]:
    return OverallStatus._from_proto(network_pb2.OverallStatus, "OVERALL_STATUS_", number)  # type: ignore[return-value]


@dataclass(frozen=True)
class Released:
    """What :meth:`Client.release` returns."""

    #: The allocation as it was when released.
    allocation: Allocation
    #: When the port can go to another service.
    quarantined_until: Optional[datetime]

    @classmethod
    def from_proto(cls, r: ports_pb2.ReleaseResponse) -> "Released":
        return cls(allocation=Allocation.from_proto(r.allocation), quarantined_until=_time(r, "quarantined_until"))


@dataclass(frozen=True)
class PortCheck:
    """Whether a port could be allocated now, and if not why."""

    port: int
    state: PortState
    #: Who holds it ("service web (pid 4242)"); ``None`` when nobody does or the caller may not know.
    holder: Optional[str]
    #: Why, in words.
    reason: str
    in_managed_range: bool

    @classmethod
    def from_proto(cls, c: ports_pb2.PortCheck) -> "PortCheck":
        state = PortState._from_proto(ports_pb2.PortState, "PORT_STATE_", c.state) or PortState.UNKNOWN
        return cls(
            port=c.port,
            state=state,  # type: ignore[arg-type]
            holder=c.holder or None,
            reason=c.reason,
            in_managed_range=c.in_managed_range,
        )


@dataclass(frozen=True)
class Event:
    """One thing that happened, numbered."""

    #: Daemon-wide, strictly increasing, never reused.
    sequence: int
    at: Optional[datetime]
    #: The kind; ``None`` for a kind this client does not know (a newer daemon's).
    kind: Optional[EventKind]
    #: The port it is about; ``None`` for events about the host or the daemon.
    port: Optional[int]
    service: Optional[str]
    #: The event in words, as logged.
    message: str
    #: The allocation after the change (allocation events).
    allocation: Optional[Allocation]
    #: What is particular to the kind (a reclaim's ``reason``, a health change's ``from``,
    #: ``to`` and ``why``, ...): the keys the JSON object carries beside the common ones.
    detail: Dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_proto(cls, e: watchdog_pb2.WatchdogEvent) -> "Event":
        detail = _whole(json_format.MessageToDict(e.details)) if e.HasField("details") else {}
        return cls(
            sequence=e.sequence,
            at=_time(e, "at"),
            kind=EventKind._from_proto(watchdog_pb2.EventKind, "EVENT_KIND_", e.kind),  # type: ignore[arg-type]
            port=e.port or None,
            service=e.service or None,
            message=e.message,
            allocation=Allocation.from_proto(e.allocation) if e.HasField("allocation") else None,
            detail=detail,
        )


@dataclass(frozen=True)
class Existing:
    """A snapshot watch's first items: one per current allocation."""

    kind: ClassVar[str] = "existing"
    allocation: Allocation


@dataclass(frozen=True)
class SnapshotComplete:
    """The item after the snapshot: complete and consistent as of ``sequence``."""

    kind: ClassVar[str] = "snapshot_complete"
    sequence: int


#: What a watch yields.
WatchItem = Union[Event, Existing, SnapshotComplete]


def watch_item(msg: watchdog_pb2.WatchResponse) -> WatchItem:
    if msg.HasField("event"):
        return Event.from_proto(msg.event)
    if msg.HasField("existing"):
        return Existing(allocation=Allocation.from_proto(msg.existing))
    return SnapshotComplete(sequence=msg.snapshot_sequence)
