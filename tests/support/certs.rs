//! A test PKI made with rcgen: a CA, a server certificate for 127.0.0.1 / localhost (and any
//! extra names), and client certificates, written as PEM files into a directory.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};

pub struct Pki {
    pub dir: PathBuf,
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    issuer: Issuer<'static, KeyPair>,
}

fn write(path: &Path, pem: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, pem).expect("write PEM");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}

fn ca(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let key = KeyPair::generate().expect("CA key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).expect("CA cert");
    (cert.pem(), Issuer::new(params, key))
}

impl Pki {
    /// A CA plus a server certificate for `127.0.0.1`, `localhost` and `extra_names`, and one
    /// client certificate, under `dir`.
    pub fn new(dir: &Path, extra_names: &[&str]) -> Self {
        std::fs::create_dir_all(dir).expect("pki dir");
        let (ca_pem, issuer) = ca("portwarden test CA");
        let ca = dir.join("ca.pem");
        write(&ca, &ca_pem);
        let mut names = vec!["127.0.0.1".to_string(), "localhost".to_string()];
        names.extend(extra_names.iter().map(|n| n.to_string()));
        let (server_cert, server_key) = leaf(
            dir,
            "server",
            names,
            ExtendedKeyUsagePurpose::ServerAuth,
            &issuer,
        );
        let (client_cert, client_key) = leaf(
            dir,
            "client",
            vec!["portwarden-client".into()],
            ExtendedKeyUsagePurpose::ClientAuth,
            &issuer,
        );
        Self {
            dir: dir.to_path_buf(),
            ca,
            server_cert,
            server_key,
            client_cert,
            client_key,
            issuer,
        }
    }

    /// A client certificate signed by a CA the daemon does not know.
    pub fn stranger(&self) -> (PathBuf, PathBuf) {
        let (_, other) = ca("some other CA");
        leaf(
            &self.dir,
            "stranger",
            vec!["stranger".into()],
            ExtendedKeyUsagePurpose::ClientAuth,
            &other,
        )
    }
}

fn leaf(
    dir: &Path,
    name: &str,
    names: Vec<String>,
    usage: ExtendedKeyUsagePurpose,
    issuer: &Issuer<'static, KeyPair>,
) -> (PathBuf, PathBuf) {
    let key = KeyPair::generate().expect("leaf key");
    let mut params = CertificateParams::new(names).expect("leaf params");
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![usage];
    let cert = params.signed_by(&key, issuer).expect("leaf cert");
    let (c, k) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}-key.pem")),
    );
    write(&c, &cert.pem());
    write(&k, &key.serialize_pem());
    (c, k)
}
