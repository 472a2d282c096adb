//! The control API's shape against a fake controller task: a status per error, JSON bodies,
//! typed answers through the client, shutdown.

use std::time::Duration;

use haproxy_drain::api::client::{ClientError, ControlClient};
use haproxy_drain::api::wire::{DrainBody, ErrorBody, ReadyBody};
use haproxy_drain::controller::handle::ControlError;
use haproxy_drain::controller::ControllerHandle;
use hyper::{Method, StatusCode};
use tokio::sync::mpsc;

use crate::control_fake::{fake_controller, serve, view, Served};

async fn status_of(client: &ControlClient, method: Method, path: &str, body: &str) -> StatusCode {
    let payload = (!body.is_empty()).then(|| body.as_bytes().to_vec());
    let (status, bytes) = client.request(method, path, payload).await.unwrap();
    if !status.is_success() {
        let error: ErrorBody = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{path} {body}: error body is not JSON ({e})"));
        assert!(!error.error.is_empty());
    }
    status
}

#[tokio::test]
async fn every_controller_error_maps_to_its_status() {
    let served = serve(fake_controller()).await;
    let client = ControlClient::unix(&served.socket);
    let cases = [
        ("web1", StatusCode::OK),
        ("missing", StatusCode::NOT_FOUND),
        ("last", StatusCode::CONFLICT),
        ("busy", StatusCode::CONFLICT),
        ("slow", StatusCode::GATEWAY_TIMEOUT),
        ("be/sick", StatusCode::GATEWAY_TIMEOUT),
        ("refused", StatusCode::BAD_GATEWAY),
        ("gone", StatusCode::SERVICE_UNAVAILABLE),
    ];
    for (target, expected) in cases {
        for path in ["/v1/drain", "/v1/ready"] {
            let body = format!(r#"{{"target":"{target}","wait":true}}"#);
            assert_eq!(
                status_of(&client, Method::POST, path, &body).await,
                expected,
                "{path} {target}"
            );
        }
    }
    let bad_requests = [
        "{not json",
        r#"{"target":"web1","wiat":true}"#,
        r#"{"target":"  "}"#,
        r#"{"wait":true}"#,
    ];
    for body in bad_requests {
        assert_eq!(
            status_of(&client, Method::POST, "/v1/drain", body).await,
            StatusCode::BAD_REQUEST,
            "{body}"
        );
    }
    assert_eq!(
        status_of(&client, Method::GET, "/v1/nothing", "").await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        status_of(
            &client,
            Method::POST,
            "/v1/rolls",
            r#"{"containers":["a"]}"#
        )
        .await,
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[tokio::test]
async fn typed_answers_round_trip_through_the_client() {
    let served = serve(fake_controller()).await;
    let client = ControlClient::unix(&served.socket);
    let servers = client.servers().await.unwrap();
    assert_eq!(servers, vec![view("web1"), view("web2")]);

    let drain = |target: &str| DrainBody {
        target: target.into(),
        wait: true,
        timeout_ms: Some(100),
        force: false,
    };
    let report = client.drain(&drain("web1-container")).await.unwrap();
    assert!(report.drained);
    match client.drain(&drain("slow")).await.unwrap_err() {
        ClientError::Api { status, body } => {
            assert_eq!(status, 504);
            assert!(matches!(
                body.detail,
                Some(ControlError::DrainTimeout {
                    sessions_left: 3,
                    ..
                })
            ));
            assert_eq!(body.error, "be/slow still has 3 session(s) after 100 ms");
        }
        other => panic!("expected an API error, got {other:?}"),
    }
    let ready = ReadyBody {
        target: "be/web1".into(),
        wait: true,
        timeout_ms: None,
    };
    assert!(client.ready(&ready).await.unwrap().in_rotation);
}

#[tokio::test]
async fn a_stopped_controller_answers_503() {
    let (tx, rx) = mpsc::channel(1);
    drop(rx);
    let served = serve(ControllerHandle::new(tx)).await;
    let client = ControlClient::unix(&served.socket);
    match client.servers().await.unwrap_err() {
        ClientError::Api { status, .. } => assert_eq!(status, 503),
        other => panic!("expected 503, got {other:?}"),
    }
}

#[tokio::test]
async fn shutdown_stops_the_server_and_removes_the_socket() {
    let Served {
        dir: _dir,
        socket,
        trigger,
        task,
    } = serve(fake_controller()).await;
    trigger.fire();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
    assert!(!socket.exists());
    let error = ControlClient::unix(&socket).servers().await.unwrap_err();
    assert!(error.is_no_daemon(), "{error:?}");
    assert!(error
        .to_string()
        .contains("is `haproxy-drain run` running?"));
}
