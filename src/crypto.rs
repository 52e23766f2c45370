//! Secrets at rest and the signing secrets themselves. Webhook signing secrets are stored
//! encrypted with XChaCha20-Poly1305 under a key derived from `HOOKBOARD_SECRET_KEY`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

const NONCE_LEN: usize = 24;
pub const SIGNING_SECRET_PREFIX: &str = "whsec_";

/// A MAC of `message` under a key of its own for `purpose`, derived from the master key:
/// what a value the server hands out and takes back (a pre-login CSRF token) is signed with.
pub fn tag(master: &[u8; 32], purpose: &str, message: &str) -> String {
    let mut derive = <Hmac<Sha256> as Mac>::new_from_slice(master).expect("any key length");
    derive.update(purpose.as_bytes());
    let key = derive.finalize().into_bytes();
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).expect("any key length");
    mac.update(message.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Encrypts and decrypts secrets stored in the database.
#[derive(Clone)]
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
}

impl SecretBox {
    /// A key of its own for this purpose, derived from the master key, so the cookie key
    /// and the secrets key never coincide.
    pub fn new(master: &[u8; 32]) -> Self {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(master).expect("any key length");
        mac.update(b"hookboard/webhook-secrets/v1");
        let key = mac.finalize().into_bytes();
        SecretBox {
            cipher: XChaCha20Poly1305::new(&key),
        }
    }

    /// nonce || ciphertext
    pub fn seal(&self, plaintext: &str) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(XNonce::from_slice(&nonce), plaintext.as_bytes())
            .expect("encryption of a short secret cannot fail");
        [nonce.as_slice(), &sealed].concat()
    }

    pub fn open(&self, sealed: &[u8]) -> anyhow::Result<String> {
        if sealed.len() < NONCE_LEN {
            anyhow::bail!("sealed secret is too short");
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let plain = self
            .cipher
            .decrypt(XNonce::from_slice(nonce), ciphertext)
            .map_err(|_| {
                anyhow::anyhow!("a stored secret does not decrypt: was HOOKBOARD_SECRET_KEY changed?")
            })?;
        Ok(String::from_utf8(plain)?)
    }
}

/// A new Standard Webhooks signing secret: `whsec_` + base64 of 32 random bytes.
pub fn new_signing_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{SIGNING_SECRET_PREFIX}{}", STANDARD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_with_the_same_key_only() {
        let secret = new_signing_secret();
        assert!(secret.starts_with("whsec_"));
        assert_eq!(STANDARD.decode(&secret[6..]).unwrap().len(), 32);
        let sealed = SecretBox::new(&[7; 32]).seal(&secret);
        assert!(!sealed.windows(6).any(|w| w == b"whsec_"), "not stored in clear");
        assert_eq!(SecretBox::new(&[7; 32]).open(&sealed).unwrap(), secret);
        assert!(SecretBox::new(&[8; 32]).open(&sealed).is_err());
    }
}
