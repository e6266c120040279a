//! Generates the `portwarden.v1` stubs from the shared contract in ../../proto with protox (no
//! protoc), once for everyone: the clients here, and with the `server` feature the servers and
//! the descriptor set that the daemon's reflection serves.

use std::{env, fs, path::PathBuf};

use protox::prost::Message;

const PROTOS: &[&str] = &[
    "../../proto/portwarden/v1/ports.proto",
    "../../proto/portwarden/v1/network.proto",
    "../../proto/portwarden/v1/watchdog.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=../../proto");
    let fds = protox::compile(PROTOS, ["../../proto"])?;
    let out = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(out.join("portwarden_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .server_mod_attribute(".", "#[cfg(feature = \"server\")]")
        .compile_fds(fds)?;
    Ok(())
}
