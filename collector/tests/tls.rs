//! HTTPS with rustls: HTTP/1.1 and HTTP/2 (by ALPN) on the same port, and
//! on a unix socket.

mod support;

use std::sync::Arc;

use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

fn connector(cert_der: Vec<u8>, alpn: &[&[u8]]) -> TlsConnector {
    let mut roots = RootCertStore::empty();
    roots.add(cert_der.into()).unwrap();
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    TlsConnector::from(Arc::new(config))
}

#[test]
fn https_serves_http1_and_http2() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert_pem, key_pem) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_pem, cert.cert.pem()).unwrap();
    std::fs::write(&key_pem, cert.signing_key.serialize_pem()).unwrap();
    let store = TestStore::sqlite();
    let c = Collector::start(
        &store.url(),
        &[
            "--tls-cert",
            cert_pem.to_str().unwrap(),
            "--tls-key",
            key_pem.to_str().unwrap(),
        ],
    );
    let der = cert.cert.der().to_vec();
    support::stores::block_on(async move {
        let name = ServerName::try_from("localhost").unwrap();

        let tcp = tokio::net::TcpStream::connect(c.addr).await.unwrap();
        let mut tls = connector(der.clone(), &[b"http/1.1"])
            .connect(name.clone(), tcp)
            .await
            .unwrap();
        tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut reply = String::new();
        tls.read_to_string(&mut reply).await.unwrap();
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");

        let tcp = tokio::net::TcpStream::connect(c.addr).await.unwrap();
        let tls = connector(der.clone(), &[b"h2"])
            .connect(name.clone(), tcp)
            .await
            .unwrap();
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        let (mut client, conn) = h2::client::handshake(tls).await.unwrap();
        tokio::spawn(conn);
        let request = http::Request::get("https://localhost/readyz")
            .body(())
            .unwrap();
        let (response, _) = client.send_request(request, true).unwrap();
        assert_eq!(response.await.unwrap().status(), 200);

        // Plain HTTP on the TLS port gets no answer, and the server lives on.
        let mut tcp = tokio::net::TcpStream::connect(c.addr).await.unwrap();
        tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = Vec::new();
        let _ = tcp.read_to_end(&mut buf).await;
        assert!(!String::from_utf8_lossy(&buf).contains("200 OK"));
        let tcp = tokio::net::TcpStream::connect(c.addr).await.unwrap();
        assert!(
            connector(der, &[b"http/1.1"])
                .connect(name, tcp)
                .await
                .is_ok()
        );
    });
}

#[test]
fn a_bad_certificate_path_is_named() {
    let store = TestStore::sqlite();
    let err = serve_refused(&[
        "--store",
        &store.url(),
        "--allow-unauthenticated",
        "--tls-cert",
        "/nonexistent/cert.pem",
        "--tls-key",
        "/nonexistent/key.pem",
    ]);
    assert!(err.contains("/nonexistent/cert.pem"), "{err}");
}

#[test]
fn https_on_a_unix_socket() {
    let cert = rcgen::generate_simple_self_signed(vec!["collector.internal".into()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert_pem, key_pem) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_pem, cert.cert.pem()).unwrap();
    std::fs::write(&key_pem, cert.signing_key.serialize_pem()).unwrap();
    let socket = dir.path().join("c.sock");
    let store = TestStore::sqlite();
    let _c = Collector::start(
        &store.url(),
        &[
            "--tls-cert",
            cert_pem.to_str().unwrap(),
            "--tls-key",
            key_pem.to_str().unwrap(),
            "--listen",
            &format!("unix:{}", socket.display()),
        ],
    );
    let der = cert.cert.der().to_vec();
    support::stores::block_on(async move {
        let name = ServerName::try_from("collector.internal").unwrap();
        let unix = tokio::net::UnixStream::connect(&socket).await.unwrap();
        let mut tls = connector(der.clone(), &[b"http/1.1"])
            .connect(name, unix)
            .await
            .unwrap();
        tls.write_all(
            b"GET /healthz HTTP/1.1\r\nHost: collector.internal\r\nConnection: close\r\n\r\n",
        )
        .await
        .unwrap();
        let mut reply = String::new();
        tls.read_to_string(&mut reply).await.unwrap();
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        // Another name than the certificate's is refused by the client.
        let unix = tokio::net::UnixStream::connect(&socket).await.unwrap();
        let other = ServerName::try_from("localhost").unwrap();
        assert!(
            connector(der, &[b"http/1.1"])
                .connect(other, unix)
                .await
                .is_err()
        );
    });
}
