//! Generates the client stubs from the shared contract in ../../proto with protox (no protoc).

const PROTOS: &[&str] = &[
    "../../proto/portwarden/v1/ports.proto",
    "../../proto/portwarden/v1/network.proto",
    "../../proto/portwarden/v1/watchdog.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=../../proto");
    let fds = protox::compile(PROTOS, ["../../proto"])?;
    tonic_prost_build::configure()
        .build_server(false)
        .compile_fds(fds)?;
    Ok(())
}
