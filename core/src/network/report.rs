//! The assembled diagnostic report: overall status derived from the checks, the lists of
//! critical and warning check names, and the seed JSON rendering.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::check::{CheckResult, CheckStatus};

/// Overall health: `critical` if any check is critical, else `warning` if any check warns,
/// else `healthy`. `info` never changes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OverallStatus {
    Healthy,
    Warning,
    Critical,
}

impl OverallStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OverallStatus::Healthy => "healthy",
            OverallStatus::Warning => "warning",
            OverallStatus::Critical => "critical",
        }
    }

    /// The status named by `as_str`; None for anything else (an allocation made while no
    /// checks ran records "").
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Healthy, Self::Warning, Self::Critical]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// A full diagnostic report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub status: OverallStatus,
    /// Names of the checks whose status is critical.
    pub critical_issues: Vec<String>,
    /// Names of the checks whose status is warning.
    pub warnings: Vec<String>,
    /// Every check, in the order they were run.
    pub checks: Vec<CheckResult>,
    /// Wall time taken to produce the report.
    pub duration_ms: f64,
}

impl Report {
    /// Builds a report from check results, deriving the overall status and issue lists.
    pub fn from_checks(checks: Vec<CheckResult>, duration: Duration) -> Self {
        let names_with = |status: CheckStatus| -> Vec<String> {
            checks
                .iter()
                .filter(|check| check.status == status)
                .map(|check| check.name.clone())
                .collect()
        };
        let critical_issues = names_with(CheckStatus::Critical);
        let warnings = names_with(CheckStatus::Warning);
        let status = if !critical_issues.is_empty() {
            OverallStatus::Critical
        } else if !warnings.is_empty() {
            OverallStatus::Warning
        } else {
            OverallStatus::Healthy
        };
        Report {
            status,
            critical_issues,
            warnings,
            checks,
            duration_ms: duration.as_secs_f64() * 1000.0,
        }
    }

    /// The check with this name, if it was run.
    pub fn check(&self, name: &str) -> Option<&CheckResult> {
        self.checks.iter().find(|check| check.name == name)
    }

    /// Exactly the seed's shape:
    /// `{"status", "critical_issues", "warnings", "checks": {name: {"status", ..fields, "note"}}}`.
    pub fn to_seed_json(&self) -> Value {
        let mut checks = Map::with_capacity(self.checks.len());
        for check in &self.checks {
            checks.insert(check.name.clone(), check.to_seed_json());
        }
        json!({
            "status": self.status.as_str(),
            "critical_issues": self.critical_issues,
            "warnings": self.warnings,
            "checks": checks,
        })
    }
}
