//! `/volumes/...`.

use std::collections::BTreeMap;
use std::sync::Arc;

use hyper::StatusCode;
use serde::Deserialize;
use serde_json::json;

use crate::daemon::Daemon;
use crate::engine::model::null_default;
use crate::error::ApiResult;
use crate::http::{empty, json, Req, Resp};

pub fn list(d: &Arc<Daemon>) -> ApiResult<Resp> {
    let v: Vec<_> = d.list_volumes()?.iter().map(|v| d.volume_json(v)).collect();
    Ok(json(StatusCode::OK, &json!({"Volumes": v, "Warnings": []})))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct CreateBody {
    #[serde(deserialize_with = "null_default")]
    name: String,
    #[serde(deserialize_with = "null_default")]
    driver: String,
    #[serde(deserialize_with = "null_default")]
    labels: BTreeMap<String, String>,
    #[serde(deserialize_with = "null_default")]
    driver_opts: BTreeMap<String, String>,
}

pub async fn create(d: &Arc<Daemon>, mut r: Req) -> ApiResult<Resp> {
    let b: CreateBody = r.json().await?;
    if !b.driver.is_empty() && b.driver != "local" {
        return Err(crate::error::ApiError::bad_request(format!(
            "create {}: volume driver {:?} is not available (only \"local\")",
            b.name, b.driver
        )));
    }
    if !b.driver_opts.is_empty() {
        return Err(crate::error::ApiError::bad_request(
            "create: driver options are not supported by the local driver of wharfd",
        ));
    }
    let anonymous = b.name.is_empty();
    let name = if anonymous {
        crate::engine::containers::random_id()
    } else {
        b.name
    };
    let v = d.create_volume(&name, b.labels, anonymous)?;
    Ok(json(StatusCode::CREATED, &d.volume_json(&v)))
}

pub fn inspect(d: &Arc<Daemon>, name: &str) -> ApiResult<Resp> {
    let v = d.get_volume(name)?;
    Ok(json(StatusCode::OK, &d.volume_json(&v)))
}

pub fn remove(d: &Arc<Daemon>, name: &str, r: &Req) -> ApiResult<Resp> {
    d.remove_volume(name, r.q_bool("force"))?;
    Ok(empty(StatusCode::NO_CONTENT))
}

pub fn prune(d: &Arc<Daemon>) -> ApiResult<Resp> {
    let mut deleted = Vec::new();
    for v in d.list_volumes()? {
        // Docker prunes only anonymous volumes by default (API >= 1.42).
        if v.anonymous
            && d.volume_users(&v.name).is_empty()
            && d.remove_volume(&v.name, false).is_ok()
        {
            deleted.push(v.name);
        }
    }
    Ok(json(
        StatusCode::OK,
        &json!({"VolumesDeleted": deleted, "SpaceReclaimed": 0}),
    ))
}
