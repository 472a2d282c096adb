//! DockerClient against the real engine: list, inspect, stop/start, image checks, errors.

use std::time::Duration;

use haproxy_drain::docker::{ContainerInfo, DockerClient, DockerError, HealthStatus};

use crate::support::docker::{ContainerSpec, TestNetwork, IMAGE_HC, IMAGE_NOHC};
use crate::support::proxy::refusing_socket;
use crate::support::wait::{wait_for, wait_until};

const HEALTHY_WITHIN: Duration = Duration::from_secs(20);

fn client() -> DockerClient {
    DockerClient::connect().expect("a Docker client from DOCKER_HOST or the default socket")
}

fn find<'a>(containers: &'a [ContainerInfo], id: &str) -> Option<&'a ContainerInfo> {
    containers.iter().find(|info| info.id == id)
}

#[tokio::test]
async fn list_and_inspect_report_ips_labels_health_and_stop_signal() {
    let network = TestNetwork::create();
    let role = crate::support::docker::unique_name("role");
    let web = ContainerSpec::new("web")
        .network(&network)
        .label("hdt.role", &role)
        .label("haproxy-drain.backend", "be_web")
        .stop_signal("SIGUSR1")
        .run();
    let plain = ContainerSpec::new("plain")
        .image(IMAGE_NOHC)
        .network(&network)
        .run();
    let docker = client();
    docker.ping().await.expect("the engine answers");

    let inspected = wait_for(HEALTHY_WITHIN, "the hc container to be healthy", || async {
        let info = docker.inspect(web.name()).await.expect("inspect")?;
        (info.health == Some(HealthStatus::Healthy)).then_some(info)
    })
    .await;
    let web_ip = web.ip().expect("web has an IP on the test network");
    assert_eq!(inspected.id, web.id);
    assert_eq!(inspected.name, web.name());
    assert!(inspected.running);
    assert_eq!(inspected.stop_signal, 10, "SIGUSR1");
    assert_eq!(inspected.networks, vec![(network.name.clone(), web_ip)]);
    assert_eq!(inspected.labels.get("hdt.role"), Some(&role));
    assert_eq!(
        inspected
            .labels
            .get("haproxy-drain.backend")
            .map(String::as_str),
        Some("be_web")
    );
    assert_eq!(
        inspected.labels.get("testapp.version").map(String::as_str),
        Some("v1"),
        "image labels too"
    );
    assert_eq!(inspected.image, IMAGE_HC);
    let started = inspected
        .started_at_unix_nanos
        .expect("inspect reports State.StartedAt");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    assert!(
        started < now && now - started < 300_000_000_000,
        "StartedAt {started} is this run's start (now {now})"
    );
    // The list has no start time; everything else agrees with inspect.
    let inspected = haproxy_drain::docker::ContainerInfo {
        started_at_unix_nanos: None,
        ..inspected
    };

    // Twice: the first listing may inspect (stop-signal cache miss), the second reads the cache.
    for round in ["first", "second"] {
        let listed = docker.list_containers(false).await.expect("list");
        let web_listed =
            find(&listed, &web.id).unwrap_or_else(|| panic!("{round} listing has web"));
        assert_eq!(
            web_listed, &inspected,
            "{round} listing agrees with inspect"
        );
        let plain_listed =
            find(&listed, &plain.id).unwrap_or_else(|| panic!("{round} listing has plain"));
        assert_eq!(
            plain_listed.health, None,
            "no HEALTHCHECK in the nohc image"
        );
        assert_eq!(plain_listed.stop_signal, 15, "the default");
        assert_eq!(
            plain_listed.networks,
            vec![(network.name.clone(), plain.ip().expect("plain ip"))]
        );
        assert!(plain_listed.running);
    }
}

#[tokio::test]
async fn stopped_containers_are_listed_only_with_all_and_have_no_address() {
    let stopped = ContainerSpec::new("stopped").image(IMAGE_NOHC).run();
    stopped.stop(5);
    let docker = client();

    let running = docker.list_containers(false).await.expect("list running");
    assert!(
        find(&running, &stopped.id).is_none(),
        "not among the running"
    );
    let all = docker.list_containers(true).await.expect("list all");
    let info = find(&all, &stopped.id).expect("listed with all=true");
    assert!(!info.running);
    assert!(
        info.networks.is_empty(),
        "a stopped container has no IP: {:?}",
        info.networks
    );
}

#[tokio::test]
async fn lifecycle_helpers_stop_start_and_find_images() {
    let docker = client();
    docker.require_image(IMAGE_HC).await.expect("inspect image");
    let missing = docker
        .require_image("hdt-no-such-image:none")
        .await
        .expect_err("a 404 is an answer");
    assert!(
        matches!(&missing, DockerError::ImageMissing { image } if image == "hdt-no-such-image:none"),
        "{missing:?}"
    );

    let app = ContainerSpec::new("life").image(IMAGE_NOHC).run();
    docker
        .stop(&app.id, Some(Duration::from_secs(5)))
        .await
        .expect("stop");
    let info = docker
        .inspect(&app.id)
        .await
        .expect("inspect")
        .expect("still exists");
    assert!(!info.running, "stopped");

    docker.start(&app.id).await.expect("start");
    wait_until(
        Duration::from_secs(10),
        "the container to run again",
        || async {
            docker
                .inspect(&app.id)
                .await
                .ok()
                .flatten()
                .is_some_and(|info| info.running)
        },
    )
    .await;

    app.remove();
    assert_eq!(
        docker.inspect(&app.id).await.expect("a 404 is an answer"),
        None
    );
    let gone = docker
        .require_container(&app.id)
        .await
        .expect_err("a removed container is not there");
    assert!(gone.is_not_found(), "{gone:?}");
}

#[tokio::test]
async fn bad_endpoints_give_operator_friendly_errors() {
    let err = DockerClient::connect_to("ftp://example").expect_err("unsupported scheme");
    assert!(
        matches!(err, DockerError::UnsupportedEndpoint { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("DOCKER_HOST"), "{err}");

    let err = DockerClient::connect_to("unix:///nonexistent/hdt-docker.sock")
        .expect_err("a missing socket is reported at once");
    assert!(matches!(err, DockerError::SocketMissing { .. }), "{err:?}");
    assert!(
        err.to_string().contains("/nonexistent/hdt-docker.sock"),
        "{err}"
    );

    let (_dir, dead) = refusing_socket();
    let refusing = DockerClient::connect_to(&dead).expect("the socket file exists");
    let err = refusing.ping().await.expect_err("nothing listens there");
    assert!(err.is_unreachable(), "{err:?}");
    let text = err.to_string();
    assert!(text.contains(&dead) && text.contains("dockerd"), "{text}");
}
