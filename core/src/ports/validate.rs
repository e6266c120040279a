//! Requests in domain terms (allocate, renew) and the rules they must satisfy as a whole, from
//! the single-field rules of `fields.rs`. Every violation names its field; a request with any
//! violation changes nothing.

use std::collections::BTreeMap;

use super::error::{FieldViolation, PortsError};
use super::fields::{
    managed_port, outside_ranges, port_number, unprintable, valid_project, valid_service,
    valid_ttl, MAX_LABELS, MAX_LABEL_KEY_LEN, MAX_TEXT_BYTES,
};
use super::process::{identify_owner, OwnerError, ProcessIdentity};
use super::range::RangeSet;

/// An allocation request as the transport hands it over (unvalidated).
#[derive(Debug, Clone, Default)]
pub struct AllocateRequest {
    pub service: String,
    pub purpose: String,
    pub started_by: String,
    pub pid: Option<i32>,
    pub port: Option<u32>,
    pub ttl_seconds: Option<u64>,
    pub labels: BTreeMap<String, String>,
    pub owner_is_caller: bool,
    /// The owner as the transport already identified it (with `identify_owner`'s rules) while
    /// checking a claim: recorded as is, without reading /proc again.
    pub owner_identity: Option<ProcessIdentity>,
    /// The service name was made up from the process (a portserver request), so it names no
    /// service: no sticky port, and quarantine applies between two such allocations as between
    /// any two services (their owners are unrelated processes).
    pub derived_service: bool,
    /// Return the caller's own existing allocation of the service instead of a new one.
    pub reuse: bool,
    /// This port when it can be had, else any free one (a port outside the managed ranges
    /// cannot be had: a warning says so).
    pub prefer: Option<u32>,
    /// Which pool the port comes from (`port` and `prefer` must lie in it).
    pub pool: super::pool::Pool,
    /// A project port: the project's directory (absolute, canonical); `service` is then the
    /// port's name in the project, and the port is remembered for (project, name).
    pub project: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct RenewRequest {
    pub port: u32,
    pub lease_token: Option<String>,
    pub ttl_seconds: Option<u64>,
    pub requests_delta: u64,
    pub errors_delta: u64,
    /// Lets `ttl_seconds` turn an allocation without a TTL into a lease.
    pub convert_to_lease: bool,
}

/// An allocation request that passed every rule.
#[derive(Debug, Clone)]
pub(super) struct ValidAllocate {
    pub service: String,
    pub purpose: String,
    pub started_by: String,
    /// The owning process.
    pub owner: Option<ProcessIdentity>,
    pub port: Option<u16>,
    pub ttl_seconds: Option<u64>,
    pub labels: BTreeMap<String, String>,
    pub derived_service: bool,
    pub reuse: bool,
    pub prefer: Option<u16>,
    /// What the caller should hear about the request although it is served (a preferred port
    /// that cannot be had).
    pub warnings: Vec<String>,
    /// A project port: (project, name); `service` becomes the record's service name.
    pub project: Option<super::projects::ProjectKey>,
}

/// A TTL on an allocation that has none turns it into a lease that dies unless renewed: a
/// renew may do that only when it says so (`convert_to_lease`).
pub(super) fn ttl_change_allowed(
    a: &super::lease::Allocation,
    req: &RenewRequest,
) -> Result<(), PortsError> {
    if req.ttl_seconds.is_none() || a.ttl_seconds.is_some() || req.convert_to_lease {
        return Ok(());
    }
    let kept = match a.pid() {
        Some(pid) => format!("while process {pid} runs"),
        None => "until released".to_string(),
    };
    Err(PortsError::invalid(
        "ttl_seconds",
        format!(
            "port {} ({}) has no TTL (it is kept {kept}); a TTL would make it a lease that is \
             reclaimed unless renewed in time: set convert_to_lease (--convert-to-lease) if that \
             is what you want",
            a.port, a.service
        ),
    ))
}

/// What a valid `prefer` comes to.
enum Preferred {
    /// A managed port: taken when it can be had.
    Port(u16),
    /// A port outside the managed ranges, which is never free here; the warning says so.
    NeverFree(String),
}

/// `prefer` is "this port if it is free, else any free port". A port outside the managed
/// ranges is never free here, so it is no error: any port is handed out, with a warning that
/// says why. Only a number that is no port number is refused.
fn preferred_port(port: u32, ranges: &RangeSet) -> Result<Preferred, FieldViolation> {
    let p = port_number("prefer", port)?;
    Ok(if ranges.contains(p) {
        Preferred::Port(p)
    } else {
        Preferred::NeverFree(format!(
            "prefer: {}, so it is never free here: any free port was handed out instead",
            outside_ranges(p, ranges)
        ))
    })
}

impl AllocateRequest {
    pub(super) fn validate(
        mut self,
        ranges: &RangeSet,
        caller_pid: Option<i32>,
    ) -> Result<ValidAllocate, PortsError> {
        let mut bad = Vec::new();
        let mut warnings = Vec::new();
        if let Err(rule) = valid_service(&self.service) {
            bad.push(FieldViolation::new("service", rule));
        }
        for (field, value) in [("purpose", &self.purpose), ("started_by", &self.started_by)] {
            if let Some(rule) = unprintable(value) {
                bad.push(FieldViolation::new(field, rule));
            }
            if value.len() > MAX_TEXT_BYTES {
                bad.push(FieldViolation::new(
                    field,
                    format!(
                        "must be at most {MAX_TEXT_BYTES} bytes; got {}",
                        value.len()
                    ),
                ));
            }
        }
        let port = match self.port {
            Some(p) => managed_port("port", p, ranges)
                .map_err(|v| bad.push(v))
                .ok(),
            None => None,
        };
        let prefer = match (self.prefer, self.port) {
            (Some(_), Some(_)) => {
                bad.push(FieldViolation::new(
                    "prefer",
                    "give port (exactly this one) or prefer (this one, else any), not both",
                ));
                None
            }
            (Some(p), None) => match preferred_port(p, ranges) {
                Ok(Preferred::Port(p)) => Some(p),
                Ok(Preferred::NeverFree(warning)) => {
                    warnings.push(warning);
                    None
                }
                Err(v) => {
                    bad.push(v);
                    None
                }
            },
            (None, _) => None,
        };
        if let Some(ttl) = self.ttl_seconds {
            if let Err(v) = valid_ttl("ttl_seconds", ttl) {
                bad.push(v);
            }
        }
        if let Some(p) = &self.project {
            if let Err(v) = valid_project("project", p) {
                bad.push(v);
            }
        }
        if self.labels.len() > MAX_LABELS {
            bad.push(FieldViolation::new(
                "labels",
                format!("at most {MAX_LABELS} labels; got {}", self.labels.len()),
            ));
        }
        for (k, v) in &self.labels {
            let key_ok = !k.is_empty()
                && k.len() <= MAX_LABEL_KEY_LEN
                && k.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._/-".contains(c));
            if !key_ok {
                bad.push(FieldViolation::new(
                    format!("labels[{}]", crate::text::printable(k)),
                    format!("keys must match [A-Za-z0-9._/-]{{1,{MAX_LABEL_KEY_LEN}}}"),
                ));
            }
            if v.len() > MAX_TEXT_BYTES {
                bad.push(FieldViolation::new(
                    format!("labels[{}]", crate::text::printable(k)),
                    format!("values must be at most {MAX_TEXT_BYTES} bytes"),
                ));
            }
            if let Some(rule) = unprintable(v) {
                bad.push(FieldViolation::new(
                    format!("labels[{}]", crate::text::printable(k)),
                    rule,
                ));
            }
        }
        let owner_pid = match (self.pid, self.owner_is_caller) {
            (Some(_), true) => {
                bad.push(FieldViolation::new(
                    "pid",
                    "set either pid or owner_is_caller, not both",
                ));
                None
            }
            (Some(pid), false) => Some(("pid", pid)),
            (None, true) => match caller_pid {
                Some(pid) => Some(("owner_is_caller", pid)),
                None => {
                    bad.push(FieldViolation::new(
                        "owner_is_caller",
                        "needs the Unix socket (the caller's pid is only known there)",
                    ));
                    None
                }
            },
            (None, false) => None,
        };
        let mut unreadable = None;
        // An owner the transport already identified (checking a claim) is taken as is: the
        // process that was checked is the one that owns the port.
        let given = self.owner_identity.take();
        let owner_of = |pid: i32| match given.clone() {
            Some(id) if id.pid == pid => Ok(id),
            _ => identify_owner(pid),
        };
        let owner = owner_pid.and_then(|(field, pid)| match owner_of(pid) {
            Ok(id) => Some(id),
            Err(OwnerError::Unreadable { reason, .. }) => {
                unreadable = Some(format!("cannot check process {pid}: {reason}"));
                None
            }
            Err(e) => {
                bad.push(FieldViolation::new(field, e.to_string()));
                None
            }
        });
        if !bad.is_empty() {
            return Err(PortsError::Invalid(bad));
        }
        // Not the caller's fault: the daemon could not read /proc (out of descriptors, say).
        if let Some(reason) = unreadable {
            return Err(PortsError::Unavailable { reason });
        }
        // A project port is named by its record, not by a service: no sticky port or name
        // binding of its own (the record does both), and the project's own allocation is
        // handed back by the project's rule, not `reuse`'s (which matches by name alone).
        let project = self.project.map(|project| super::projects::ProjectKey {
            project,
            name: self.service.clone(),
        });
        Ok(ValidAllocate {
            service: self.service,
            purpose: self.purpose,
            started_by: self.started_by,
            owner,
            port,
            ttl_seconds: self.ttl_seconds,
            labels: self.labels,
            derived_service: self.derived_service || project.is_some(),
            reuse: self.reuse && project.is_none(),
            prefer,
            warnings,
            project,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::fields::{event_filter, MAX_PROJECT_BYTES, MAX_TTL_SECONDS};
    use super::*;

    fn ranges() -> RangeSet {
        RangeSet::new(vec!["8000-8100".parse().unwrap()]).unwrap()
    }

    fn fields(e: PortsError) -> Vec<String> {
        match e {
            PortsError::Invalid(v) => v.into_iter().map(|f| f.field).collect(),
            other => panic!("expected Invalid, got {other}"),
        }
    }

    #[test]
    fn every_rule_names_its_field() {
        let req = AllocateRequest {
            service: "bad name!".into(),
            purpose: "x".repeat(257),
            port: Some(9000),
            ttl_seconds: Some(0),
            pid: Some(i32::MAX),
            ..Default::default()
        };
        assert_eq!(
            fields(req.validate(&ranges(), None).unwrap_err()),
            ["service", "purpose", "port", "ttl_seconds", "pid"]
        );
    }

    #[test]
    fn a_good_request_passes() {
        let req = AllocateRequest {
            service: "grace_backend".into(),
            pid: Some(std::process::id() as i32),
            ttl_seconds: Some(30),
            port: Some(8000),
            ..Default::default()
        };
        let v = req.validate(&ranges(), None).unwrap();
        assert_eq!(v.port, Some(8000));
        assert!(v.owner.is_some());
    }

    #[test]
    fn control_characters_are_refused_in_every_text_field() {
        let labels = [("k".to_string(), "v\u{1b}[31m".to_string())].into();
        let req = AllocateRequest {
            service: "a".into(),
            purpose: "line\nINFO forged".into(),
            started_by: "nul\0".into(),
            labels,
            ..Default::default()
        };
        assert_eq!(
            fields(req.validate(&ranges(), None).unwrap_err()),
            ["purpose", "started_by", "labels[k]"]
        );
    }

    #[test]
    fn a_project_is_an_absolute_canonical_path() {
        for good in ["/", "/src/app", "/home/a b/app-2"] {
            assert!(valid_project("project", good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "src/app",
            "/src/./app",
            "/src/../app",
            "/src//app",
            "/src/app/",
            "/src/\napp",
        ] {
            let v = valid_project("project", bad).unwrap_err();
            assert_eq!(v.field, "project", "{bad}");
        }
        let long = format!("/{}", "x".repeat(MAX_PROJECT_BYTES));
        assert!(valid_project("project", &long)
            .unwrap_err()
            .rule
            .contains("at most 1024 bytes"));
        let req = AllocateRequest {
            service: "web".into(),
            project: Some("relative".into()),
            ..Default::default()
        };
        assert_eq!(
            fields(req.validate(&ranges(), None).unwrap_err()),
            ["project"]
        );
    }

    #[test]
    fn too_many_labels_is_refused() {
        let labels = (0..17)
            .map(|i| (format!("k{i}"), "v".to_string()))
            .collect();
        let req = AllocateRequest {
            service: "a".into(),
            labels,
            ..Default::default()
        };
        assert_eq!(
            fields(req.validate(&ranges(), None).unwrap_err()),
            ["labels"]
        );
    }

    mod properties {
        //! Whatever arrives, validation answers (never panics), and what it accepts keeps every
        //! rule it states.
        use super::super::*;
        use super::{event_filter, MAX_TTL_SECONDS};
        use proptest::prelude::*;

        fn text() -> impl Strategy<Value = String> {
            prop_oneof![
                ".{0,300}",
                "[A-Za-z0-9._-]{0,70}",
                proptest::collection::vec(any::<char>(), 0..80)
                    .prop_map(|v| v.into_iter().collect()),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn validation_answers_and_what_passes_keeps_the_rules(
                service in text(),
                purpose in text(),
                started_by in text(),
                pid in proptest::option::of(any::<i32>()),
                port in proptest::option::of(any::<u32>()),
                ttl in proptest::option::of(any::<u64>()),
                labels in proptest::collection::btree_map(text(), text(), 0..20),
                owner_is_caller in any::<bool>(),
                caller_pid in proptest::option::of(any::<i32>()),
            ) {
                let ranges = RangeSet::new(vec!["8000-8100".parse().unwrap()]).unwrap();
                let req = AllocateRequest {
                    service,
                    purpose,
                    started_by,
                    pid,
                    port,
                    ttl_seconds: ttl,
                    labels,
                    owner_is_caller,
                    ..Default::default()
                };
                if let Ok(v) = req.validate(&ranges, caller_pid) {
                    prop_assert!(valid_service(&v.service).is_ok());
                    prop_assert!(v.purpose.len() <= MAX_TEXT_BYTES);
                    prop_assert!(v.started_by.len() <= MAX_TEXT_BYTES);
                    prop_assert!(!v.purpose.chars().any(crate::text::is_unsafe));
                    prop_assert!(!v.started_by.chars().any(crate::text::is_unsafe));
                    prop_assert!(v.labels.len() <= MAX_LABELS);
                    prop_assert!(v.port.is_none_or(|p| ranges.contains(p)));
                    prop_assert!(v.ttl_seconds.is_none_or(|t| (1..=MAX_TTL_SECONDS).contains(&t)));
                    for (k, val) in &v.labels {
                        prop_assert!(!k.is_empty() && k.len() <= MAX_LABEL_KEY_LEN);
                        prop_assert!(val.len() <= MAX_TEXT_BYTES);
                        prop_assert!(!val.chars().any(crate::text::is_unsafe));
                    }
                }
            }

            #[test]
            fn event_filters_answer_for_any_input(
                service in proptest::option::of(text()),
                port in proptest::option::of(any::<u32>()),
            ) {
                if let Ok(f) = event_filter(service, port, Vec::new()) {
                    prop_assert!(f.port.is_none_or(|p| p != 0));
                    prop_assert!(f.service.as_deref().is_none_or(|s| valid_service(s).is_ok()));
                }
            }
        }
    }
}
