//! One integration-test binary (links once): real HAProxy, real Docker.

mod support;
