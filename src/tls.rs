//! One process-wide TLS crypto provider (ring), installed before any client is built; see
//! `shared/reference/crates.md` on why a single provider matters.

/// Installs ring as the rustls provider; harmless when called again.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
