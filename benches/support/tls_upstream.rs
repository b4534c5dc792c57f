//! The mock upstream served as OpenAI's API is: HTTP/2 over TLS.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

/// Serves `router` as OpenAI's API is served: over TLS, with HTTP/2 negotiated (ALPN `h2`),
/// so that many of ragd's upstream streams share a connection, and at most
/// [`STREAMS_PER_CONNECTION`] streams open at once on one connection, as a hosted API's
/// servers allow. The certificate is made for
/// 127.0.0.1 and written to `dir`; returns the base URL (`.../v1`) and the certificate's PEM
/// file, which ragd is told to trust with `SSL_CERT_FILE`.
/// The stream cap of the mock's connections: the least RFC 9113 recommends, and what many
/// servers in front of hosted APIs allow.
const STREAMS_PER_CONNECTION: u32 = 100;

pub async fn serve(router: Router, dir: &Path) -> (String, PathBuf) {
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let pem = dir.join("upstream.pem");
    std::fs::write(&pem, certified.cert.pem()).unwrap();
    let key = PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der());
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![certified.cert.der().clone()],
            PrivateKeyDer::Pkcs8(key),
        )
        .unwrap();
    tls.alpn_protocols = vec![b"h2".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let listener = ragd::app::bind_listener(([127, 0, 0, 1], 0).into()).unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                continue;
            };
            let (acceptor, router) = (acceptor.clone(), router.clone());
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(socket).await else {
                    return;
                };
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .max_concurrent_streams(STREAMS_PER_CONNECTION)
                    .serve_connection(TokioIo::new(stream), TowerToHyperService::new(router))
                    .await;
            });
        }
    });
    (format!("https://{address}/v1"), pem)
}
