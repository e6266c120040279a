//! The rules for single fields of a request, one function each, used by every transport: a
//! service name, a project directory, a port number, the ports of a check, a TTL, a service
//! filter, an event filter. Each names its field when it refuses.

use super::error::{FieldViolation, PortsError};
use super::range::RangeSet;

pub const MAX_SERVICE_LEN: usize = 64;
pub const MAX_TEXT_BYTES: usize = 256;
pub const MAX_LABELS: usize = 16;
pub const MAX_LABEL_KEY_LEN: usize = 63;
pub const MAX_TTL_SECONDS: u64 = 30 * 24 * 3600;
pub const MAX_PROJECT_BYTES: usize = 1024;

/// `text` with every character a service name does not allow ([A-Za-z0-9._-]) replaced by '_',
/// for names made up from something else (a command name, a directory name).
pub fn service_chars(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

pub fn valid_service(service: &str) -> Result<(), String> {
    if service.is_empty() || service.len() > MAX_SERVICE_LEN {
        return Err(format!(
            "must be 1-{MAX_SERVICE_LEN} characters of [A-Za-z0-9._-]"
        ));
    }
    if let Some((at, c)) = service
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || "._-".contains(*c)))
    {
        return Err(format!(
            "must match [A-Za-z0-9._-]{{1,{MAX_SERVICE_LEN}}}; {} at byte {at} is not allowed",
            visible(c)
        ));
    }
    Ok(())
}

/// A character as a reader can see it in a message: quoted when it shows as itself, by its
/// code point when it would not (a NUL, a blank, a control or formatting character), so that a
/// NUL is not reported as a space.
fn visible(c: char) -> String {
    if c.is_whitespace() || c.is_control() || crate::text::is_unsafe(c) {
        format!("U+{:04X}", c as u32)
    } else {
        format!("'{c}'")
    }
}

/// Free text must be printable: a newline, ESC, NUL or C1 control (or a character that reorders
/// a terminal line) could forge a log line or drive an operator's terminal.
pub(super) fn unprintable(value: &str) -> Option<String> {
    let (at, c) = value
        .char_indices()
        .find(|(_, c)| crate::text::is_unsafe(*c))?;
    Some(format!(
        "must not contain control or formatting characters; found {} at byte {at}",
        c.escape_unicode()
    ))
}

/// A project's directory: absolute and canonical (no `.` or `..` component, no empty one, no
/// trailing `/`), printable, at most [`MAX_PROJECT_BYTES`]. The daemon checks the spelling
/// only: the directory is the client's to name, and need not be readable here.
pub fn valid_project(field: &str, project: &str) -> Result<(), FieldViolation> {
    let bad = |rule: String| Err(FieldViolation::new(field, rule));
    if project.len() > MAX_PROJECT_BYTES {
        return bad(format!(
            "must be at most {MAX_PROJECT_BYTES} bytes; got {}",
            project.len()
        ));
    }
    if let Some(rule) = unprintable(project) {
        return bad(rule);
    }
    // Path::components would hide a `.` in the middle: the segments are read as written.
    let dotted = project
        .split(['/', '\\'])
        .any(|seg| seg == "." || seg == "..");
    let canonical = if cfg!(windows) {
        std::path::Path::new(project).is_absolute() && !dotted
    } else {
        project.starts_with('/')
            && !dotted
            && !project.contains("//")
            && (project == "/" || !project.ends_with('/'))
    };
    if !canonical {
        return bad(format!(
            "must be an absolute, canonical directory path (no '.' or '..', no '//', no \
             trailing '/'); got '{}'",
            crate::text::printable(project)
        ));
    }
    Ok(())
}

/// A port number from the wire, checked against 1-65535: the one rule every transport uses.
pub fn port_number(field: &str, port: u32) -> Result<u16, FieldViolation> {
    u16::try_from(port)
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| FieldViolation::new(field, format!("{port} is not a port number (1-65535)")))
}

/// A `service` filter as a request gives it: none when empty, else a valid service name.
pub fn service_filter(service: Option<String>) -> Result<Option<String>, PortsError> {
    match service.filter(|s| !s.is_empty()) {
        Some(name) => {
            valid_service(&name).map_err(|rule| PortsError::invalid("service", rule))?;
            Ok(Some(name))
        }
        None => Ok(None),
    }
}

/// The ports a check asks about: 1 to [`MAX_CHECK_PORTS`](super::MAX_CHECK_PORTS) of them, each
/// a port number (every bad one named by its index).
pub fn port_list(ports: &[u32]) -> Result<Vec<u16>, PortsError> {
    let max = super::MAX_CHECK_PORTS;
    if ports.is_empty() || ports.len() > max {
        return Err(PortsError::invalid(
            "ports",
            format!("give 1-{max} ports; got {}", ports.len()),
        ));
    }
    let mut bad = Vec::new();
    let mut list = Vec::with_capacity(ports.len());
    for (i, p) in ports.iter().enumerate() {
        match port_number(&format!("ports[{i}]"), *p) {
            Ok(p) => list.push(p),
            Err(v) => bad.push(v),
        }
    }
    if bad.is_empty() {
        Ok(list)
    } else {
        Err(PortsError::Invalid(bad))
    }
}

/// "9000 is outside the managed ranges (8000-8100)".
pub(super) fn outside_ranges(port: u16, ranges: &RangeSet) -> String {
    format!("{port} is outside the managed ranges ({ranges})")
}

/// A port number from the wire, checked against 1-65535 and the managed ranges.
pub fn managed_port(field: &str, port: u32, ranges: &RangeSet) -> Result<u16, FieldViolation> {
    let p = port_number(field, port)?;
    if !ranges.contains(p) {
        return Err(FieldViolation::new(field, outside_ranges(p, ranges)));
    }
    Ok(p)
}

pub fn valid_ttl(field: &str, ttl: u64) -> Result<(), FieldViolation> {
    if ttl == 0 || ttl > MAX_TTL_SECONDS {
        return Err(FieldViolation::new(
            field,
            format!("must be 1-{MAX_TTL_SECONDS} seconds (30 days); got {ttl}"),
        ));
    }
    Ok(())
}

/// A watch or history filter from the wire: the service and port must be valid when given.
pub fn event_filter(
    service: Option<String>,
    port: Option<u32>,
    kinds: Vec<crate::events::EventKind>,
) -> Result<crate::events::EventFilter, PortsError> {
    let mut bad = Vec::new();
    if let Some(s) = &service {
        if let Err(rule) = valid_service(s) {
            bad.push(FieldViolation::new("service", rule));
        }
    }
    let port = port.and_then(|p| match port_number("port", p) {
        Ok(p) => Some(p),
        Err(v) => {
            bad.push(v);
            None
        }
    });
    if !bad.is_empty() {
        return Err(PortsError::Invalid(bad));
    }
    Ok(crate::events::EventFilter {
        service,
        port,
        kinds,
    })
}
