//! The Docker Engine API: routing and the wire shapes, one file per resource. Handlers
//! convert between Docker's JSON and the engine's types and call the engine.

mod containers;
mod image_prune;
mod images;
mod networks;
mod streams;
mod system;
mod volumes;

use std::sync::Arc;

use hyper::Method as M;

use crate::daemon::Daemon;
use crate::error::{ApiError, ApiResult};
use crate::http::{percent_decode, Req, Resp};

pub async fn route(d: &Arc<Daemon>, r: Req) -> ApiResult<Resp> {
    let segs: Vec<String> = r
        .path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let m = r.method.clone();
    match (&m, s.as_slice()) {
        (&M::GET | &M::HEAD, ["_ping"]) => Ok(system::ping(&r)),
        (&M::GET, ["version"]) => Ok(system::version()),
        (&M::GET, ["info"]) => system::info(d).await,
        (&M::GET, ["events"]) => system::events(d, &r),
        (&M::GET, ["system", "df"]) => system::df(d).await,
        // No builder yet, so no build cache: prune has nothing to do.
        (&M::POST, ["build", "prune"]) => Ok(crate::http::json(
            hyper::StatusCode::OK,
            &serde_json::json!({"CachesDeleted": [], "SpaceReclaimed": 0}),
        )),

        (&M::GET, ["containers", "json"]) => containers::list(d, &r),
        (&M::POST, ["containers", "create"]) => containers::create(d, r).await,
        (&M::POST, ["containers", "prune"]) => containers::prune(d).await,
        (&M::GET, ["containers", id, "json"]) => containers::inspect(d, id),
        (&M::POST, ["containers", id, "start"]) => containers::start(d, id).await,
        (&M::POST, ["containers", id, "stop"]) => containers::stop(d, id, &r).await,
        (&M::POST, ["containers", id, "restart"]) => containers::restart(d, id, &r).await,
        (&M::POST, ["containers", id, "kill"]) => containers::kill(d, id, &r).await,
        (&M::POST, ["containers", id, "wait"]) => containers::wait(d, id, &r),
        (&M::DELETE, ["containers", id]) => containers::remove(d, id, &r).await,
        (&M::POST, ["containers", id, "rename"]) => containers::rename(d, id, &r).await,
        (&M::POST, ["containers", id, "pause"]) => containers::pause(d, id, true).await,
        (&M::POST, ["containers", id, "unpause"]) => containers::pause(d, id, false).await,
        (&M::GET, ["containers", id, "top"]) => containers::top(d, id).await,
        (&M::GET, ["containers", id, "stats"]) => containers::stats(d, id, &r).await,
        (&M::GET, ["containers", id, "logs"]) => containers::logs(d, id, &r),
        (&M::POST, ["containers", id, "resize"]) => containers::resize(d, id, &r).await,
        (&M::POST, ["containers", id, "attach"]) => streams::attach(d, id, r).await,
        (&M::POST, ["containers", id, "exec"]) => containers::exec_create(d, id, r).await,
        (&M::GET | &M::HEAD, ["containers", id, "archive"]) => {
            containers::archive_get(d, id, &r).await
        }
        (&M::PUT, ["containers", id, "archive"]) => containers::archive_put(d, id, r).await,
        (&M::GET, ["containers", id, "export"]) => containers::export(d, id).await,

        (&M::POST, ["exec", id, "start"]) => streams::exec_start(d, id, r).await,
        (&M::POST, ["exec", id, "resize"]) => streams::exec_resize(d, id, &r).await,
        (&M::GET, ["exec", id, "json"]) => streams::exec_inspect(d, id),

        (&M::GET, ["images", "json"]) => images::list(d, &r).await,
        (&M::POST, ["images", "create"]) => images::create(d, r).await,
        (&M::POST, ["images", "load"]) => images::load(d, r).await,
        (&M::GET, ["images", "get"]) => images::save(d, &r.q_all("names")).await,
        (&M::POST, ["images", "prune"]) => image_prune::prune(d, &r).await,
        (&M::POST, ["commit"]) => images::commit(d, r).await,
        (&M::GET, ["images", name @ .., "get"]) if !name.is_empty() => {
            images::save(d, &[name.join("/")]).await
        }
        (&M::GET, ["images", name @ .., "json"]) if !name.is_empty() => {
            images::inspect(d, &name.join("/")).await
        }
        (&M::GET, ["images", name @ .., "history"]) if !name.is_empty() => {
            images::history(d, &name.join("/")).await
        }
        (&M::POST, ["images", name @ .., "tag"]) if !name.is_empty() => {
            images::tag(d, &name.join("/"), &r).await
        }
        (&M::POST, ["images", name @ .., "push"]) if !name.is_empty() => {
            images::push(d, &name.join("/"), r).await
        }
        (&M::DELETE, ["images", name @ ..]) if !name.is_empty() => {
            images::remove(d, &name.join("/"), &r).await
        }

        (&M::GET, ["networks"]) => networks::list(d),
        (&M::POST, ["networks", "create"]) => networks::create(d, r).await,
        (&M::POST, ["networks", "prune"]) => networks::prune(d),
        (&M::GET, ["networks", id]) => networks::inspect(d, id),
        (&M::DELETE, ["networks", id]) => networks::remove(d, id),
        (&M::POST, ["networks", id, "connect"]) => networks::connect(d, id, r).await,
        (&M::POST, ["networks", id, "disconnect"]) => networks::disconnect(d, id, r).await,

        (&M::GET, ["volumes"]) => volumes::list(d),
        (&M::POST, ["volumes", "create"]) => volumes::create(d, r).await,
        (&M::POST, ["volumes", "prune"]) => volumes::prune(d),
        (&M::GET, ["volumes", name]) => volumes::inspect(d, name),
        (&M::DELETE, ["volumes", name]) => volumes::remove(d, name, &r),

        (&M::GET, ["plugins", ..]) | (&M::GET, ["secrets", ..]) | (&M::GET, ["configs", ..]) => {
            Err(ApiError::not_found(format!(
                "{}: not supported by wharfd",
                r.path
            )))
        }
        (&M::GET, ["swarm"]) | (&M::GET, ["nodes", ..]) | (&M::GET, ["services", ..]) => {
            Err(ApiError::new(
                hyper::StatusCode::SERVICE_UNAVAILABLE,
                "This node is not a swarm manager.",
            ))
        }
        _ => Err(ApiError::not_found(format!(
            "page not found: {} {}",
            r.method, r.path
        ))),
    }
}
