//! Public key material of certificates and private keys, compared to tell whether a key file
//! belongs to a certificate. Supports PKCS#8 (RSA, EC, Ed25519/Ed448 with embedded public key),
//! PKCS#1 RSA and SEC1 EC keys without any cryptographic library: the public half is read from
//! the key structure, never derived.

use super::der::{self, Element};

/// rsaEncryption, 1.2.840.113549.1.1.1
const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
/// id-ecPublicKey, 1.2.840.10045.2.1
const OID_EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];

/// The comparable public half of a key pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    Rsa {
        modulus: Vec<u8>,
        exponent: Vec<u8>,
    },
    /// EC point or EdDSA public key bytes.
    Raw(Vec<u8>),
}

/// What a private key file told us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyInspection {
    Public(PublicKey),
    /// A private key whose structure does not carry its public half (e.g. PKCS#8 v1 Ed25519).
    NoPublicKey(&'static str),
    Encrypted,
    Unrecognised(String),
}

/// The public key of a certificate's SubjectPublicKeyInfo (DER).
pub fn public_key_from_spki(spki: &[u8]) -> Option<PublicKey> {
    let (content, _) = der::expect(spki, der::TAG_SEQUENCE)?;
    let (algorithm, rest) = der::expect(content, der::TAG_SEQUENCE)?;
    let (oid, _) = der::expect(algorithm, der::TAG_OID)?;
    let (bits, _) = der::expect(rest, der::TAG_BIT_STRING)?;
    let key = der::bit_string_bytes(bits)?;
    if oid == OID_RSA {
        rsa_public(key)
    } else {
        Some(PublicKey::Raw(key.to_vec()))
    }
}

/// RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }, or the first two
/// integers after the version of RSAPrivateKey.
fn rsa_integers(integers: &[Element<'_>]) -> Option<PublicKey> {
    match integers {
        [modulus, exponent, ..]
            if modulus.tag == der::TAG_INTEGER && exponent.tag == der::TAG_INTEGER =>
        {
            Some(PublicKey::Rsa {
                modulus: der::unsigned_integer(modulus.content).to_vec(),
                exponent: der::unsigned_integer(exponent.content).to_vec(),
            })
        }
        _ => None,
    }
}

fn rsa_public(der_bytes: &[u8]) -> Option<PublicKey> {
    let (content, _) = der::expect(der_bytes, der::TAG_SEQUENCE)?;
    rsa_integers(&der::children(content)?)
}

/// RSAPrivateKey (PKCS#1): version, modulus, publicExponent, ...
fn rsa_private(der_bytes: &[u8]) -> Option<PublicKey> {
    let (content, _) = der::expect(der_bytes, der::TAG_SEQUENCE)?;
    let elements = der::children(content)?;
    rsa_integers(elements.get(1..)?)
}

/// ECPrivateKey (SEC1): version, privateKey, [0] parameters, [1] publicKey BIT STRING.
fn ec_private(der_bytes: &[u8]) -> Option<Option<PublicKey>> {
    let (content, _) = der::expect(der_bytes, der::TAG_SEQUENCE)?;
    let elements = der::children(content)?;
    let public = elements
        .iter()
        .find(|element| element.tag == 0xa1)
        .and_then(|element| der::expect(element.content, der::TAG_BIT_STRING))
        .and_then(|(bits, _)| der::bit_string_bytes(bits))
        .map(|point| PublicKey::Raw(point.to_vec()));
    Some(public)
}

/// PKCS#8 / OneAsymmetricKey: version, algorithm, privateKey, [0] attributes, [1] publicKey.
fn pkcs8(der_bytes: &[u8]) -> KeyInspection {
    let parsed =
        der::expect(der_bytes, der::TAG_SEQUENCE).and_then(|(content, _)| der::children(content));
    let Some(elements) = parsed else {
        return KeyInspection::Unrecognised("not a PKCS#8 structure".into());
    };
    let algorithm = elements
        .get(1)
        .filter(|element| element.tag == der::TAG_SEQUENCE)
        .and_then(|element| der::expect(element.content, der::TAG_OID))
        .map(|(oid, _)| oid);
    let private = elements
        .get(2)
        .filter(|element| element.tag == der::TAG_OCTET_STRING)
        .map(|element| element.content);
    let (Some(algorithm), Some(private)) = (algorithm, private) else {
        return KeyInspection::Unrecognised("not a PKCS#8 structure".into());
    };
    let embedded_public = elements
        .iter()
        .skip(3)
        .find(|element| element.tag == 0x81)
        .and_then(|element| der::bit_string_bytes(element.content))
        .map(|bytes| PublicKey::Raw(bytes.to_vec()));
    if algorithm == OID_RSA {
        return rsa_private(private).map_or_else(
            || KeyInspection::Unrecognised("malformed RSA private key".into()),
            KeyInspection::Public,
        );
    }
    if algorithm == OID_EC {
        return match ec_private(private) {
            Some(Some(public)) => KeyInspection::Public(public),
            Some(None) => {
                embedded_public.map_or(KeyInspection::NoPublicKey("EC"), KeyInspection::Public)
            }
            None => KeyInspection::Unrecognised("malformed EC private key".into()),
        };
    }
    embedded_public.map_or(
        KeyInspection::NoPublicKey("EdDSA/other"),
        KeyInspection::Public,
    )
}

/// Inspects one private key block; `label` is the PEM label (`PRIVATE KEY`, `RSA PRIVATE KEY`,
/// `EC PRIVATE KEY`, `ENCRYPTED PRIVATE KEY`) or empty for raw DER.
pub fn inspect_private_key(label: &str, der_bytes: &[u8]) -> KeyInspection {
    match label {
        "ENCRYPTED PRIVATE KEY" => KeyInspection::Encrypted,
        "RSA PRIVATE KEY" => rsa_private(der_bytes).map_or_else(
            || KeyInspection::Unrecognised("malformed RSA PRIVATE KEY".into()),
            KeyInspection::Public,
        ),
        "EC PRIVATE KEY" => match ec_private(der_bytes) {
            Some(Some(public)) => KeyInspection::Public(public),
            Some(None) => KeyInspection::NoPublicKey("EC"),
            None => KeyInspection::Unrecognised("malformed EC PRIVATE KEY".into()),
        },
        _ => pkcs8(der_bytes),
    }
}
