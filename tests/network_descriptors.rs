//! The file-descriptor check reads the live RLIMIT_NOFILE.

#[path = "netcommon/mod.rs"]
mod common;

use portwarden::network::descriptors::file_descriptors;
use portwarden::network::{CheckStatus, Thresholds};

use common::{is_child, lower_nofile_soft_limit, report_to_parent, run_test_in_child};

#[test]
fn a_soft_limit_of_256_is_a_warning() {
    if is_child() {
        report_to_parent(&file_descriptors(&Thresholds::default()).to_seed_json());
        return;
    }
    let result = run_test_in_child("a_soft_limit_of_256_is_a_warning", || {
        lower_nofile_soft_limit(256)
    });
    assert_eq!(result["soft_limit"], 256, "{result}");
    assert_eq!(result["status"], "warning");
    assert!(result["recommendation"].is_string());
}

#[test]
fn descriptors_in_use_are_counted() {
    let before = file_descriptors(&Thresholds::default());
    let files: Vec<std::fs::File> = (0..20)
        .map(|_| std::fs::File::open("/proc/self/stat").expect("open"))
        .collect();
    let after = file_descriptors(&Thresholds::default());
    let count = |result: &portwarden::network::CheckResult| {
        result
            .field("current_handles")
            .and_then(|value| value.as_u64())
            .expect("count")
    };
    // Other test threads may open a few descriptors concurrently.
    assert!(
        count(&after) >= count(&before) + 20 - 2,
        "{before:?} {after:?}"
    );
    assert_ne!(after.status, CheckStatus::Critical);
    drop(files);
}
