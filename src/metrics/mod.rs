//! Prometheus metrics (`GET /metrics`), with the prometheus-client crate, named as
//! node_exporter names things: `portwarden_` prefix, base units, `_total` on counters.
//!
//! Two kinds of metric live here:
//! - counters fed as things happen ([`Metrics::observe_request`]: requests, errors and refusals
//!   by gRPC code (or METHOD_NOT_ALLOWED), counted in one place, the request layer in
//!   `api::observe`);
//! - gauges read at scrape time from the domain ([`scrape::DomainCollector`]: ports by state
//!   from the allocator, checks and sockets from the current network snapshot).
//!
//! The allocator's and the watchdog's totals (allocations, releases, reclaims by reason, passes
//! and their durations, watchers) are read at scrape time too: the domain counts, this module
//! only renders.

mod scrape;

use std::sync::Arc;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use crate::network::NetworkGate;
use crate::ports::Allocator;
use crate::watchdog::Watchdog;

pub use prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// How a request reached the daemon.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum Transport {
    Grpc,
    Rest,
    /// portpicker's line protocol.
    Portserver,
}

impl EncodeLabelValue for Transport {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        let name = match self {
            Transport::Grpc => "grpc",
            Transport::Rest => "rest",
            Transport::Portserver => "portserver",
        };
        EncodeLabelValue::encode(&name, encoder)
    }
}

/// `method` is a gRPC method path (`/portwarden.v1.PortsService/Allocate`) or a REST route
/// (`GET /api/ports/allocations/{port}`), always from a fixed set (unknown paths are `unknown`),
/// so a client cannot grow the label space.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub transport: Transport,
    pub method: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusalLabels {
    pub code: &'static str,
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    errors: Family<RequestLabels, Counter>,
    refusals: Family<RefusalLabels, Counter>,
}

impl Metrics {
    pub fn new(allocator: Arc<Allocator>, gate: Arc<NetworkGate>, watchdog: Arc<Watchdog>) -> Self {
        let mut registry = Registry::with_prefix("portwarden");
        let requests = Family::<RequestLabels, Counter>::default();
        let errors = Family::<RequestLabels, Counter>::default();
        let refusals = Family::<RefusalLabels, Counter>::default();
        registry.register(
            "requests",
            "Requests answered, by transport and method",
            requests.clone(),
        );
        registry.register(
            "request_errors",
            "Requests answered with an error (any gRPC code but OK), by transport and method",
            errors.clone(),
        );
        registry.register(
            "refusals",
            "Requests refused, by gRPC status code (REST errors carry the same codes; a REST \
             method a path does not take is METHOD_NOT_ALLOWED)",
            refusals.clone(),
        );
        registry.register_collector(Box::new(scrape::DomainCollector::new(
            allocator, gate, watchdog,
        )));
        Self {
            registry,
            requests,
            errors,
            refusals,
        }
    }

    /// Counts one answered request, and its refusal when it was refused (None: a success).
    pub fn observe_request(
        &self,
        transport: Transport,
        method: &'static str,
        refusal: Option<Refusal>,
    ) {
        let labels = RequestLabels { transport, method };
        self.requests.get_or_create(&labels).inc();
        if let Some(refusal) = refusal {
            self.errors.get_or_create(&labels).inc();
            self.refusals
                .get_or_create(&RefusalLabels {
                    code: refusal.name(),
                })
                .inc();
        }
    }

    /// The Prometheus text exposition (format 0.0.4). Blocking: the scrape may take a new
    /// network snapshot when the current one is older than its max age.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::with_capacity(8 * 1024);
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// Why a request was refused, as `portwarden_refusals_total{code}` counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The gRPC code of the answer (REST errors carry one too).
    Code(tonic::Code),
    /// A REST path asked with a method it does not take (HTTP 405). Its body says
    /// UNIMPLEMENTED, as grpc-gateway's does, but nothing is missing: the caller chose the
    /// wrong method.
    MethodNotAllowed,
}

impl Refusal {
    /// `INVALID_ARGUMENT`, ..., or `METHOD_NOT_ALLOWED`.
    pub fn name(self) -> &'static str {
        match self {
            Refusal::Code(code) => code_name(code),
            Refusal::MethodNotAllowed => "METHOD_NOT_ALLOWED",
        }
    }
}

/// The canonical name of a gRPC code (`INVALID_ARGUMENT`).
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}
