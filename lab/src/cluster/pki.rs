//! The cluster's certificates: a CA (rcgen), the API server's serving
//! certificate, client certificates (admin, controllers, nodes, users), the
//! node agent's kubelet serving certificate, and the service-account key pair.
//! Written as PEM files into the cluster's temp dir, which the components read.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

const CA_NAME: &str = "wsaffinity-lab cluster CA";

/// A CA that can sign more certificates later (`cluster kubeconfig --user`).
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pub cert_pem: String,
}

/// A certificate and its key, as PEM.
pub struct Pair {
    pub cert_pem: String,
    pub key_pem: String,
}

impl Pair {
    /// Write `NAME.crt` and `NAME.key` into `dir`; returns their paths.
    pub fn write(&self, dir: &Path, name: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
        let crt = dir.join(format!("{name}.crt"));
        let key = dir.join(format!("{name}.key"));
        std::fs::write(&crt, &self.cert_pem)
            .with_context(|| format!("writing {}", crt.display()))?;
        write_private(&key, &self.key_pem)?;
        Ok((crt, key))
    }
}

fn ca_params() -> anyhow::Result<CertificateParams> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, CA_NAME);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(p)
}

impl Ca {
    /// A new CA; its key is written to `dir/ca.key`, its certificate to `dir/ca.crt`.
    pub fn generate(dir: &Path) -> anyhow::Result<Self> {
        let key = KeyPair::generate()?;
        let cert = ca_params()?.self_signed(&key)?;
        let cert_pem = cert.pem();
        std::fs::write(dir.join("ca.crt"), &cert_pem).context("writing ca.crt")?;
        write_private(&dir.join("ca.key"), &key.serialize_pem())?;
        Ok(Self {
            issuer: Issuer::new(ca_params()?, key),
            cert_pem,
        })
    }

    /// The CA of a running cluster, from the files `generate` wrote.
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let read = |name: &str| {
            std::fs::read_to_string(dir.join(name))
                .with_context(|| format!("reading {}", dir.join(name).display()))
        };
        let key = KeyPair::from_pem(&read("ca.key")?).context("parsing ca.key")?;
        Ok(Self {
            issuer: Issuer::new(ca_params()?, key),
            cert_pem: read("ca.crt")?,
        })
    }

    /// A client certificate: CN is the user name, O the group (as the API server reads them).
    pub fn client(&self, user: &str, group: Option<&str>) -> anyhow::Result<Pair> {
        let mut p = CertificateParams::new(Vec::<String>::new())?;
        p.distinguished_name.push(DnType::CommonName, user);
        if let Some(g) = group {
            p.distinguished_name.push(DnType::OrganizationName, g);
        }
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        self.sign(p)
    }

    /// A serving certificate for these DNS names and IP addresses.
    pub fn server(&self, cn: &str, dns: &[&str], ips: &[Ipv4Addr]) -> anyhow::Result<Pair> {
        let mut p = CertificateParams::new(dns.iter().map(|s| s.to_string()).collect::<Vec<_>>())?;
        p.subject_alt_names
            .extend(ips.iter().map(|ip| SanType::IpAddress(IpAddr::V4(*ip))));
        p.distinguished_name.push(DnType::CommonName, cn);
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        self.sign(p)
    }

    fn sign(&self, params: CertificateParams) -> anyhow::Result<Pair> {
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Pair {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// The service-account token key pair: `sa.key` (private) and `sa.pub`.
pub fn service_account_keys(dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let key = KeyPair::generate()?;
    let private = dir.join("sa.key");
    let public = dir.join("sa.pub");
    write_private(&private, &key.serialize_pem())?;
    std::fs::write(&public, key.public_key_pem()).context("writing sa.pub")?;
    Ok((private, public))
}

/// Write a file only its owner can read (keys, kubeconfigs with keys).
pub fn write_private(path: &Path, pem: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(pem.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loaded_ca_signs_certificates_that_chain_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::generate(dir.path()).unwrap();
        let again = Ca::load(dir.path()).unwrap();
        assert_eq!(ca.cert_pem, again.cert_pem);
        let pair = again.client("alice", Some("devs")).unwrap();
        assert!(pair.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(pair.key_pem.contains("PRIVATE KEY"));
    }
}
