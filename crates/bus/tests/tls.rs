//! `bus::connect` over TLS against a real nats-server that verifies clients: a CA, a server
//! certificate (for 127.0.0.1) and a client certificate are made at test time with rcgen. With
//! the CA, the client certificate and its key the client connects and a message goes round;
//! without the client certificate, or without the CA, it is refused with an error that says
//! what went wrong and holds neither the password nor the private key.

use std::path::PathBuf;
use std::time::Duration;

use bus::{NatsAuth, NatsConnection, NatsTls};
use futures_util::StreamExt;
use local_nats::{NatsServer, ServerOptions};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

const USER: &str = "tls-user";
const PASSWORD: &str = "tls-pw-Hq3xT9";

/// PEM files of one test PKI.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A CA; a server certificate for 127.0.0.1 and localhost; a client certificate; and a
    /// second CA that signed nothing here (a client trusting only it must refuse the server).
    fn generate() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, pem: String| std::fs::write(dir.path().join(name), pem).unwrap();

        let ca = authority("infra-tickets test CA");
        write("ca.pem", ca.pem());
        write("other-ca.pem", authority("someone else's CA").pem());

        let server_key = KeyPair::generate().unwrap();
        let mut server =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        server.distinguished_name.push(DnType::CommonName, "nats-server");
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        write("server.pem", server.signed_by(&server_key, &ca).unwrap().pem());
        write("server-key.pem", server_key.serialize_pem());

        let client_key = KeyPair::generate().unwrap();
        let mut client = CertificateParams::new(Vec::<String>::new()).unwrap();
        client.distinguished_name.push(DnType::CommonName, "triage");
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        write("client.pem", client.signed_by(&client_key, &ca).unwrap().pem());
        write("client-key.pem", client_key.serialize_pem());
        Pki { dir }
    }
}

fn authority(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// nats-server requiring TLS and a client certificate signed by the CA, and a password.
fn server(pki: &Pki) -> NatsServer {
    let config = pki.path("nats.conf");
    let file = |name: &str| pki.path(name).display().to_string();
    std::fs::write(
        &config,
        format!(
            "tls {{\n  cert_file: {:?}\n  key_file: {:?}\n  ca_file: {:?}\n  verify: true\n  timeout: 2\n}}\n\
             authorization {{\n  user: {USER}\n  password: $ITK_TLS_TEST_PASSWORD\n}}\n",
            file("server.pem"),
            file("server-key.pem"),
            file("ca.pem"),
        ),
    )
    .unwrap();
    NatsServer::start_with(ServerOptions {
        config_file: Some(config),
        env: vec![("ITK_TLS_TEST_PASSWORD".into(), PASSWORD.into())],
        ..ServerOptions::default()
    })
    .expect("a nats-server >= 2.10 with TLS")
}

fn settings(server: &NatsServer, tls: NatsTls) -> NatsConnection {
    NatsConnection {
        url: format!("tls://127.0.0.1:{}", server.port()),
        name: "tls-test".into(),
        auth: NatsAuth::UserPassword { user: USER.into(), password: PASSWORD.into() },
        tls,
    }
}

fn full_tls(pki: &Pki) -> NatsTls {
    NatsTls {
        ca_file: Some(pki.path("ca.pem")),
        client_cert: Some(pki.path("client.pem")),
        client_key: Some(pki.path("client-key.pem")),
        required: true,
    }
}

/// The error of a refused connection, checked to hold no secret.
async fn refused(settings: &NatsConnection, pki: &Pki) -> String {
    let error = match tokio::time::timeout(Duration::from_secs(15), bus::connect(settings)).await {
        Ok(Ok(_)) => panic!("connected with {:?}", settings.tls),
        Ok(Err(error)) => error,
        Err(_) => panic!("bus::connect neither connected nor failed within 15 s"),
    };
    let text = format!("{error} / {error:?} / {}", chain(&error));
    assert!(!text.contains(PASSWORD), "the password in {text}");
    let key = std::fs::read_to_string(pki.path("client-key.pem")).unwrap();
    let key_body = key.lines().nth(1).unwrap();
    assert!(!text.contains(key_body), "the private key in {text}");
    eprintln!("refused as expected: {text}");
    text
}

fn chain(error: &dyn std::error::Error) -> String {
    let mut text = String::new();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!("{cause}: "));
        source = cause.source();
    }
    text
}

#[tokio::test]
async fn with_the_ca_and_a_client_certificate_a_message_goes_round() {
    let pki = Pki::generate();
    let server = server(&pki);
    let client = bus::connect(&settings(&server, full_tls(&pki))).await.expect("a TLS connection");
    let mut subscription = client.subscribe("tls.check").await.unwrap();
    client.publish("tls.check", "over TLS".into()).await.unwrap();
    client.flush().await.unwrap();
    let message = tokio::time::timeout(Duration::from_secs(5), subscription.next())
        .await
        .expect("the message comes back")
        .expect("a message");
    assert_eq!(&message.payload[..], b"over TLS");
    // JetStream answers too, over the same connection.
    let js = bus::jetstream(client);
    let account = js.query_account().await.expect("JetStream over TLS");
    assert_eq!(account.streams, 0);
}

#[tokio::test]
async fn without_the_client_certificate_the_server_refuses() {
    let pki = Pki::generate();
    let server = server(&pki);
    let tls = NatsTls { client_cert: None, client_key: None, ..full_tls(&pki) };
    let error = refused(&settings(&server, tls), &pki).await;
    // rustls: "received fatal alert: CertificateRequired", the server's answer to no certificate.
    assert!(
        error.contains("CertificateRequired"),
        "the error says a client certificate is required: {error}"
    );
    assert!(error.contains("127.0.0.1"), "the error names the server: {error}");
    let log = server.log();
    assert!(log.to_lowercase().contains("tls handshake error"), "the server says why: {log}");
}

#[tokio::test]
async fn a_server_signed_by_another_ca_is_not_trusted() {
    let pki = Pki::generate();
    let server = server(&pki);
    let tls = NatsTls { ca_file: Some(pki.path("other-ca.pem")), ..full_tls(&pki) };
    let error = refused(&settings(&server, tls), &pki).await;
    assert!(
        error.contains("invalid peer certificate: UnknownIssuer"),
        "the error says whom it distrusts: {error}"
    );
}

#[tokio::test]
async fn a_certificate_without_its_key_is_refused_before_connecting() {
    let pki = Pki::generate();
    let server = server(&pki);
    let tls = NatsTls { client_key: None, ..full_tls(&pki) };
    let error = refused(&settings(&server, tls), &pki).await;
    assert!(error.contains("set both or neither"), "{error}");
}
