//! Routes, handlers, and the mapping from typed errors to HTTP statuses.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use super::wire::{
    millis_or, DrainBody, ErrorBody, ReadyBody, RollBody, RollCreated, DEFAULT_DRAIN_TIMEOUT,
    DEFAULT_READY_TIMEOUT,
};
use crate::controller::handle::{
    ControlError, DrainReport, DrainRequest, ReadyReport, ReadyRequest, ServerView,
};
use crate::controller::{ControllerHandle, Target, Trigger};
use crate::fleet_budget::FleetStatus;
use crate::roll::{RollError, RollManager, RollProgress, RollSpec, DEFAULT_STEP_TIMEOUT};

/// What every handler can reach.
#[derive(Clone)]
pub struct ApiState {
    pub controller: ControllerHandle,
    /// `None` when the daemon runs without Docker: roll requests then get 503.
    pub rolls: Option<RollManager>,
}

/// The API's routes, without authentication (see [`super::listen`]).
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/v1/servers", get(servers))
        .route("/v1/fleet", get(fleet))
        .route("/v1/drain", post(drain))
        .route("/v1/ready", post(ready))
        .route("/v1/rolls", post(start_roll))
        .route("/v1/rolls/{id}", get(roll_progress))
        .fallback(|| async { HttpError::new(StatusCode::NOT_FOUND, "no such endpoint") })
        .method_not_allowed_fallback(|| async {
            HttpError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed here")
        })
        .with_state(state)
}

/// An error answer: status plus JSON body.
#[derive(Debug)]
pub struct HttpError {
    pub status: StatusCode,
    pub body: ErrorBody,
}

impl HttpError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            body: ErrorBody::message(message),
        }
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

/// One status per [`ControlError`] variant.
pub fn status_of(error: &ControlError) -> StatusCode {
    match error {
        ControlError::NotFound(_) => StatusCode::NOT_FOUND,
        ControlError::Budget { .. } | ControlError::Conflict(_) | ControlError::FleetBudget(_) => {
            StatusCode::CONFLICT
        }
        ControlError::DrainTimeout { .. } | ControlError::ReadyTimeout { .. } => {
            StatusCode::GATEWAY_TIMEOUT
        }
        ControlError::Haproxy(_) => StatusCode::BAD_GATEWAY,
        ControlError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    }
}

impl From<ControlError> for HttpError {
    fn from(error: ControlError) -> Self {
        Self {
            status: status_of(&error),
            body: ErrorBody {
                error: error.to_string(),
                detail: Some(error),
            },
        }
    }
}

impl From<RollError> for HttpError {
    fn from(error: RollError) -> Self {
        let status = match error {
            RollError::Invalid(_) => StatusCode::BAD_REQUEST,
            RollError::Overlap { .. } => StatusCode::CONFLICT,
            RollError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        };
        Self::new(status, error.to_string())
    }
}

impl From<JsonRejection> for HttpError {
    fn from(rejection: JsonRejection) -> Self {
        // axum answers 415/422 for some of these; to a client they are all a bad request.
        Self::new(
            StatusCode::BAD_REQUEST,
            format!("bad request body: {}", rejection.body_text()),
        )
    }
}

fn target_of(text: &str) -> Result<Target, HttpError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(HttpError::new(
            StatusCode::BAD_REQUEST,
            "target is empty: give a container name or backend/server",
        ));
    }
    Ok(Target::parse(text))
}

async fn servers(State(state): State<ApiState>) -> Result<Json<Vec<ServerView>>, HttpError> {
    Ok(Json(state.controller.status().await?))
}

/// The fleet budget (`[fleet]`): 404 without it.
async fn fleet(State(state): State<ApiState>) -> Result<Json<FleetStatus>, HttpError> {
    match state.controller.fleet_status().await? {
        Some(status) => Ok(Json(status)),
        None => Err(HttpError::new(
            StatusCode::NOT_FOUND,
            "this haproxy-drain has no [fleet] table in its configuration",
        )),
    }
}

async fn drain(
    State(state): State<ApiState>,
    body: Result<Json<DrainBody>, JsonRejection>,
) -> Result<Json<DrainReport>, HttpError> {
    let Json(body) = body?;
    let request = DrainRequest {
        target: target_of(&body.target)?,
        wait: body.wait,
        timeout: millis_or(body.timeout_ms, DEFAULT_DRAIN_TIMEOUT),
        force: body.force,
        trigger: Trigger::Api,
        // An operator's drain holds until an operator's ready, across container restarts.
        sticky: true,
    };
    tracing::info!(target = %request.target, wait = request.wait, force = request.force, "control API: drain");
    let report = state.controller.drain(request).await?;
    if body.wait && !report.drained {
        return Err(ControlError::DrainTimeout {
            server: report.server,
            sessions_left: report.sessions_left,
            waited_ms: report.elapsed_ms,
        }
        .into());
    }
    Ok(Json(report))
}

async fn ready(
    State(state): State<ApiState>,
    body: Result<Json<ReadyBody>, JsonRejection>,
) -> Result<Json<ReadyReport>, HttpError> {
    let Json(body) = body?;
    let request = ReadyRequest {
        withdraw_stop: false,
        target: target_of(&body.target)?,
        wait: body.wait,
        timeout: millis_or(body.timeout_ms, DEFAULT_READY_TIMEOUT),
    };
    tracing::info!(target = %request.target, wait = request.wait, "control API: ready");
    let report = state.controller.ready(request).await?;
    if body.wait && !report.in_rotation {
        return Err(ControlError::ReadyTimeout {
            server: report.server,
            waited_ms: report.elapsed_ms,
            reason: "the controller answered before it was back in rotation".into(),
        }
        .into());
    }
    Ok(Json(report))
}

async fn start_roll(
    State(state): State<ApiState>,
    body: Result<Json<RollBody>, JsonRejection>,
) -> Result<(StatusCode, Json<RollCreated>), HttpError> {
    let Json(body) = body?;
    let rolls = state.rolls.ok_or(RollError::Unavailable)?;
    let spec = RollSpec {
        containers: body.containers,
        image: body.image.filter(|i| !i.trim().is_empty()),
        pull: body.pull,
        max_unavailable: body.max_unavailable.unwrap_or(1),
        step_timeout: millis_or(body.timeout_ms, DEFAULT_STEP_TIMEOUT),
        surge: body.surge || body.max_surge.is_some(),
        max_surge: body.max_surge.unwrap_or(1),
        watch: body.watch_ms.map(std::time::Duration::from_millis),
        rollback_on_failure: body.rollback_on_failure,
    };
    tracing::info!(containers = ?spec.containers, image = ?spec.image, "control API: roll");
    let id = rolls.start(spec)?;
    Ok((StatusCode::ACCEPTED, Json(RollCreated { id })))
}

async fn roll_progress(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<RollProgress>, HttpError> {
    let rolls = state.rolls.ok_or(RollError::Unavailable)?;
    rolls
        .progress(&id)
        .map(Json)
        .ok_or_else(|| HttpError::new(StatusCode::NOT_FOUND, format!("no roll with id {id}")))
}
