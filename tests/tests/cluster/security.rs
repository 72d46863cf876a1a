//! The cluster listener only speaks mutually authenticated TLS with certificates of the
//! cluster CA, and a peer sending garbage loses its connection, never the server.

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use integration_tests::cluster::TestCluster;
use integration_tests::process::{binaries, wait_for};
use license_shared::protocol::{self, DpToCp, Hello, PROTOCOL_MINOR};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn a_data_plane_with_a_certificate_of_another_ca_is_refused() {
    let mut cluster = TestCluster::new().await.expect("cluster");
    let cp = cluster.start_control_plane().await.expect("control plane");
    let foreign = cluster.dir.join("foreign");
    let output = Command::new(binaries().expect("binaries").join("control-plane"))
        .args(["gen-cert", "--out-dir"])
        .arg(&foreign)
        .output()
        .expect("gen-cert ran");
    assert!(output.status.success());
    // Trusts the real CA (so only the client side is wrong) but presents a foreign certificate.
    let mut args = cluster.data_plane_args(&cp, &cluster.dir.join("foreign-dp"), "cluster-dp");
    for (flag, file) in [
        ("--cluster-cert", "cluster-dp.crt"),
        ("--cluster-cert-key", "cluster-dp.key"),
    ] {
        let position = args.iter().position(|arg| arg == flag).expect("flag");
        args[position + 1] = foreign.join(file).display().to_string();
    }
    let mut dp = cluster
        .spawn_data_plane("dp-foreign", args)
        .await
        .expect("started");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        dp.process.is_running(),
        "the data plane keeps retrying, it does not crash"
    );
    let ready = cluster
        .client
        .get(format!("{}/status/ready", dp.status_url))
        .send()
        .await
        .expect("sent");
    assert_eq!(ready.status(), 503, "no state was ever received");
    let dp_log = dp.process.log_text();
    assert!(
        dp_log.contains("not connected to the control plane"),
        "{dp_log}"
    );
    let cp_log = cp.process.log_text();
    assert!(cp_log.contains("TLS handshake failed"), "{cp_log}");
}

#[tokio::test]
async fn plaintext_and_certificate_less_clients_are_refused() {
    let mut cluster = TestCluster::new().await.expect("cluster");
    let cp = cluster.start_control_plane().await.expect("control plane");
    let address = format!("127.0.0.1:{}", cp.cluster_port());

    // Plaintext websocket upgrade: no HTTP answer at all.
    let mut tcp = tokio::net::TcpStream::connect(&address)
        .await
        .expect("connected");
    tcp.write_all(
        b"GET /cluster/v1 HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
          Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await
    .expect("written");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut answer)).await;
    assert!(
        !String::from_utf8_lossy(&answer).contains("101"),
        "plaintext was upgraded"
    );

    // TLS without a client certificate: the handshake fails.
    let output = Command::new("curl")
        .args(["-sS", "--max-time", "5", "--cacert"])
        .arg(cluster.certs.join("cluster-ca.crt"))
        .arg(format!(
            "https://localhost:{}/cluster/v1",
            cp.cluster_port()
        ))
        .output()
        .expect("curl ran");
    assert!(
        !output.status.success(),
        "a client without a certificate got through"
    );

    wait_for(
        "the refusals in the log",
        Duration::from_secs(5),
        || async {
            cp.process
                .log_text()
                .matches("TLS handshake failed")
                .count()
                >= 2
        },
    )
    .await
    .unwrap_or_else(|_| panic!("{}", cp.process.log_text()));
}

/// A client with a valid data-plane certificate that misbehaves.
async fn connect_as_data_plane(
    cluster: &TestCluster,
    port: u16,
) -> tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let read = |name: &str| std::fs::read(cluster.certs.join(name)).expect("certificate file");
    let config = license_shared::tls::client_config(
        &read("cluster-dp.crt"),
        &read("cluster-dp.key"),
        &read("cluster-ca.crt"),
    )
    .expect("client config");
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connected");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("a name");
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("mTLS handshake");
    let (socket, _) = tokio_tungstenite::client_async("wss://localhost/cluster/v1", tls)
        .await
        .expect("websocket");
    socket
}

#[tokio::test]
async fn malformed_protocol_messages_close_only_that_connection() {
    let mut cluster = TestCluster::new().await.expect("cluster");
    let cp = cluster.start_control_plane().await.expect("control plane");
    let license = cluster
        .create_license(&cp, serde_json::json!({}))
        .await
        .expect("license");
    let key = license["licenseKey"].as_str().expect("key").to_owned();

    let hello = DpToCp::Hello(Hello {
        node_id: uuid::Uuid::new_v4(),
        hostname: "rogue".into(),
        version: "0".into(),
        protocol_major: 99,
        protocol_minor: PROTOCOL_MINOR,
        revision: None,
        cluster_id: None,
    });
    let garbage: Vec<Message> = vec![
        Message::Binary(vec![0xff, 1, 2, 3].into()),
        Message::Binary(b"\x00{\"type\":\"applied\"}".to_vec().into()),
        Message::Text("hello?".into()),
        Message::Binary(protocol::encode(&DpToCp::Applied { revision: 1 }).into()),
        Message::Binary(protocol::encode(&hello).into()),
    ];
    for message in garbage {
        let mut socket = connect_as_data_plane(&cluster, cp.cluster_port()).await;
        socket.send(message).await.expect("sent");
        let closed = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(frame) = socket.next().await {
                match frame {
                    Ok(Message::Close(_)) | Err(_) => return true,
                    Ok(_) => {}
                }
            }
            true
        })
        .await;
        assert_eq!(closed, Ok(true), "the connection was closed");
    }
    assert!(
        cp.process.log_text().contains("protocol"),
        "reasons are logged"
    );

    // The control plane still serves, and a real data plane still syncs.
    let dp = cluster.start_data_plane(&cp).await.expect("dp");
    wait_for("the license", Duration::from_secs(5), || async {
        cluster.verify(&dp, &key).await.expect("verified").0 == 200
    })
    .await
    .expect("synced");
}
