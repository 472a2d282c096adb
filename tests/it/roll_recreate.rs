//! `DockerClient::recreate` against the real engine: the user's configuration survives, the old
//! image's does not.

use std::time::Duration;

use haproxy_drain::docker::{DockerClient, DockerError};

use crate::support::docker::{
    docker, docker_ok, ContainerSpec, TestNetwork, APP_PORT, IMAGE_HC, IMAGE_V2,
};
use crate::support::roll::{blocking, get};
use crate::support::wait::wait_for;

fn inspect(name: &str, format: &str) -> String {
    docker(&["inspect", "-f", format, name]).unwrap_or_else(|e| e)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recreate_keeps_what_the_user_set_and_takes_the_rest_from_the_new_image() {
    let (primary, side, container, plain) = blocking(|| {
        let primary = TestNetwork::create();
        let side = TestNetwork::create();
        let container = ContainerSpec::new("rich")
            .image(IMAGE_HC)
            .network(&primary)
            .env("USER_SET", "1")
            .label("tier", "web")
            .restart("on-failure:3")
            .stop_timeout(3)
            .arg("--network-alias")
            .arg("api")
            .arg("--init")
            .arg("--memory")
            .arg("64m")
            .arg("--hostname")
            .arg("custom-host")
            .run();
        docker_ok(&[
            "network",
            "connect",
            "--alias",
            "side-api",
            &side.name,
            &container.id,
        ]);
        let plain = ContainerSpec::new("plain")
            .image(IMAGE_HC)
            .network(&primary)
            .run();
        for c in [&container, &plain] {
            docker_ok(&["stop", "-t", "1", &c.id]);
        }
        (primary, side, container, plain)
    })
    .await;
    let name = container.name().to_string();
    let old_plain_hostname = inspect(plain.name(), "{{.Config.Hostname}}");

    let recreator = DockerClient::connect().expect("docker client");
    for target in [name.as_str(), plain.name()] {
        let id = recreator
            .recreate(target, IMAGE_V2)
            .await
            .expect("recreate");
        recreator.start(target).await.expect("start");
        assert_eq!(inspect(target, "{{.Id}}"), id);
    }

    // From the new image, not carried over from the old one.
    assert_eq!(inspect(&name, "{{.Config.Image}}"), IMAGE_V2);
    let env = inspect(&name, "{{json .Config.Env}}");
    assert!(
        env.contains("\"APP_VERSION=v2\"") && !env.contains("APP_VERSION=v1"),
        "{env}"
    );
    let labels = inspect(&name, "{{json .Config.Labels}}");
    assert!(labels.contains("\"testapp.version\":\"v2\""), "{labels}");
    // What the user set.
    assert!(env.contains("\"USER_SET=1\""), "{env}");
    assert!(labels.contains("\"tier\":\"web\""), "{labels}");
    assert_eq!(
        inspect(
            &name,
            "{{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}"
        ),
        "on-failure:3"
    );
    assert_eq!(inspect(&name, "{{.HostConfig.Init}}"), "true");
    assert_eq!(inspect(&name, "{{.HostConfig.Memory}}"), "67108864");
    assert_eq!(inspect(&name, "{{.Config.StopTimeout}}"), "3");
    assert_eq!(inspect(&name, "{{.Config.Hostname}}"), "custom-host");
    let aliases = |network: &str| {
        inspect(
            &name,
            &format!("{{{{json (index .NetworkSettings.Networks \"{network}\").Aliases}}}}"),
        )
    };
    assert!(
        aliases(&primary.name).contains("\"api\""),
        "{}",
        aliases(&primary.name)
    );
    assert!(
        aliases(&side.name).contains("\"side-api\""),
        "{}",
        aliases(&side.name)
    );
    // Docker's default hostname is the short id: the new container gets its own.
    let new_plain_hostname = inspect(plain.name(), "{{.Config.Hostname}}");
    assert_ne!(new_plain_hostname, old_plain_hostname);
    assert_eq!(
        new_plain_hostname,
        inspect(plain.name(), "{{.Id}}")
            .chars()
            .take(12)
            .collect::<String>()
    );
    // And it serves, as v2.
    let ip = inspect(
        &name,
        &format!(
            "{{{{(index .NetworkSettings.Networks \"{}\").IPAddress}}}}",
            primary.name
        ),
    );
    let addr: std::net::SocketAddr = format!("{ip}:{APP_PORT}").parse().expect("address");
    let body = wait_for(
        Duration::from_secs(10),
        "the recreated container to answer",
        || async move { get(addr, "/").await.ok() },
    )
    .await;
    assert!(body.contains("version=v2"), "{body}");

    let plain_name = plain.name().to_string();
    blocking(move || {
        let _ = docker(&["rm", "-f", &name, &plain_name]);
        drop((container, plain, primary, side));
    })
    .await;
}

#[tokio::test]
async fn a_missing_image_is_refused_before_the_container_is_touched() {
    let container = blocking(|| ContainerSpec::new("keep").image(IMAGE_HC).run()).await;
    let recreator = DockerClient::connect().expect("docker client");
    let error = recreator
        .recreate(container.name(), "haproxy-drain-testapp:does-not-exist")
        .await
        .unwrap_err();
    assert!(
        matches!(&error, DockerError::ImageMissing { image } if image == "haproxy-drain-testapp:does-not-exist"),
        "{error:?}"
    );
    assert_eq!(inspect(container.name(), "{{.Id}}"), container.id);
    blocking(move || drop(container)).await;
}

/// There is no registry here: `--pull` must fail fast with the engine's reason, not hang.
#[tokio::test]
async fn pull_without_a_registry_fails_with_the_engines_reason() {
    let recreator = DockerClient::connect().expect("docker client");
    let started = std::time::Instant::now();
    let error = recreator
        .pull("haproxy-drain-testapp:no-such-tag")
        .await
        .unwrap_err();
    let DockerError::Pull { image, message } = &error else {
        panic!("expected a pull error, got {error:?}");
    };
    assert_eq!(image, "haproxy-drain-testapp:no-such-tag");
    assert!(!message.is_empty());
    eprintln!("pull error: {error}");
    assert!(
        error
            .to_string()
            .starts_with("pulling image haproxy-drain-testapp:no-such-tag failed: "),
        "{error}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
}
