//! Reading OCI objects embedded in HCS documents the way hcsshim (Go) does.
//!
//! Go decodes a missing `process.user` or `process.cwd` as the zero value; `oci_spec` requires
//! both. hcsshim's own trimmed LCOW specs omit them, so before handing the JSON to `oci_spec` we
//! fill in Go's zero values (`{"uid": 0, "gid": 0}` and `""`). Nothing else is altered; the
//! runtime still validates the spec before it runs anything.

use oci_spec::runtime::{Process, Spec};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

fn fill_process_zero_values(process: &mut Map<String, Value>) {
    process
        .entry("user")
        .or_insert_with(|| serde_json::json!({ "uid": 0, "gid": 0 }));
    process
        .entry("cwd")
        .or_insert_with(|| Value::String(String::new()));
}

pub(super) fn spec<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Spec>, D::Error> {
    let Some(mut value) = Option::<Value>::deserialize(d)? else {
        return Ok(None);
    };
    if let Some(Value::Object(process)) = value.get_mut("process") {
        fill_process_zero_values(process);
    }
    Spec::deserialize(value).map(Some).map_err(D::Error::custom)
}

pub(super) fn process<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Process>, D::Error> {
    let Some(mut value) = Option::<Value>::deserialize(d)? else {
        return Ok(None);
    };
    if let Value::Object(process) = &mut value {
        fill_process_zero_values(process);
    }
    Process::deserialize(value)
        .map(Some)
        .map_err(D::Error::custom)
}
