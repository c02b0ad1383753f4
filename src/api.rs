//! The HTTP API, on a loopback port by default: health for systemd and load balancers, cases for people and tools.
//! Everything reads the store; acknowledging goes through the same store call as `earshot ack`.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use crate::clock::Clock;
use crate::store::{AckError, Closing, Store};

#[derive(Clone)]
struct Api {
    store: Store,
    clock: Arc<dyn Clock>,
}

/// The routes.
pub fn router(store: Store, clock: Arc<dyn Clock>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/api/cases", get(cases))
        .route("/api/cases/{id}/ack", post(ack))
        .with_state(Api { store, clock })
}

async fn readyz(State(api): State<Api>) -> Response {
    match api.store.call(|s| s.ping().and_then(|_| s.outbox_counts())).await {
        Ok((pending, delivered, failed)) => {
            Json(serde_json::json!({"ready": true, "outbox": {"pending": pending, "delivered": delivered, "failed": failed}}))
                .into_response()
        }
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("store not ready: {e}\n")).into_response(),
    }
}

#[derive(Deserialize)]
struct CaseQuery {
    #[serde(default)]
    open: bool,
}

async fn cases(State(api): State<Api>, Query(q): Query<CaseQuery>) -> Response {
    match api.store.call(move |s| s.cases(q.open)).await {
        Ok(rows) => Json(rows).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}

#[derive(Deserialize, Default)]
struct AckBody {
    note: Option<String>,
}

async fn ack(State(api): State<Api>, Path(id): Path<i64>, body: Option<Json<AckBody>>) -> Response {
    let note = body.and_then(|b| b.0.note);
    let now = api.clock.now();
    match api.store.call(move |s| s.close_case(id, Closing::Ack { note: note.as_deref() }, now)).await {
        Ok(closed) => Json(serde_json::json!({"case_id": closed.case_id, "notified": closed.notified, "cancelled_tiers": closed.cancelled}))
            .into_response(),
        Err(e @ AckError::NoSuchCase(_)) => (StatusCode::NOT_FOUND, format!("{e}\n")).into_response(),
        Err(e @ AckError::AlreadyClosed { .. }) => (StatusCode::CONFLICT, format!("{e}\n")).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}
