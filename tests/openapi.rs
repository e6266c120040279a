//! The OpenAPI document is generated from the REST handlers and checked in at
//! `docs/openapi.json`; this fails on any drift. Regenerate with:
//! `PORTWARDEN_UPDATE_OPENAPI=1 cargo test --test openapi`

use std::path::Path;

#[test]
fn the_checked_in_openapi_document_matches_the_handlers() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/openapi.json");
    let generated = portwarden::api::rest::openapi_json();
    if std::env::var("PORTWARDEN_UPDATE_OPENAPI").as_deref() == Ok("1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &generated).unwrap();
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "docs/openapi.json is out of date; regenerate it with \
         `PORTWARDEN_UPDATE_OPENAPI=1 cargo test --test openapi`"
    );
    let v: serde_json::Value = serde_json::from_str(&generated).unwrap();
    assert_eq!(v["openapi"], "3.2.0");
    for path in [
        "/api/ports/status",
        "/api/ports/allocations",
        "/api/ports/allocations/{port}",
        "/api/ports/allocations/{port}/renew",
        "/api/ports/health-check",
        "/api/ports/watchdog/status",
        "/api/ports/watchdog/events",
        "/api/ports/network/health",
        "/api/ports/network/stats",
        "/api/ports/network/port-exhaustion",
        "/api/ports/network/ssl-readiness",
        "/metrics",
        "/api/openapi.json",
    ] {
        assert!(v["paths"][path].is_object(), "{path} documented");
    }
}
