//! `POST /images/prune`: Docker's filters (`dangling`, `until`, `label`, `label!`) turned into
//! the engine's [`PruneFilter`], and its answer (`ImagesDeleted`, `SpaceReclaimed`).

use std::sync::Arc;

use hyper::StatusCode;
use serde_json::{json, Value};

use crate::daemon::Daemon;
use crate::engine::images::{LabelFilter, PruneFilter, Pruned};
use crate::error::{ApiError, ApiResult};
use crate::http::{json, Req, Resp};

pub async fn prune(d: &Arc<Daemon>, r: &Req) -> ApiResult<Resp> {
    let now = u64::try_from(crate::daemon::now_ns() / 1_000_000_000).unwrap_or(0);
    let f = prune_filter(r.q("filters").unwrap_or(""), now)?;
    let report = d.prune_images(f).await?;
    let items: Vec<Value> = report
        .items
        .iter()
        .map(|i| match i {
            Pruned::Untagged(n) => {
                d.emit("image", "untag", n, vec![]);
                json!({"Untagged": n})
            }
            Pruned::Deleted(id) => {
                d.emit("image", "delete", id, vec![]);
                json!({"Deleted": id})
            }
        })
        .collect();
    d.emit(
        "image",
        "prune",
        "",
        vec![("reclaimed".into(), report.reclaimed.to_string())],
    );
    Ok(json(
        StatusCode::OK,
        &json!({
            "ImagesDeleted": if items.is_empty() { Value::Null } else { json!(items) },
            "SpaceReclaimed": report.reclaimed,
        }),
    ))
}

/// The `filters` of `POST /images/prune`: `dangling` (default true), `until`, `label`,
/// `label!`; anything else is refused, as Docker does.
fn prune_filter(raw: &str, now: u64) -> ApiResult<PruneFilter> {
    let mut f = PruneFilter {
        dangling_only: true,
        ..Default::default()
    };
    if raw.trim().is_empty() {
        return Ok(f);
    }
    let v: Value = serde_json::from_str(raw)
        .map_err(|e| ApiError::bad_request(format!("invalid filters: {e}")))?;
    let obj = v
        .as_object()
        .ok_or_else(|| ApiError::bad_request("invalid filters: not an object"))?;
    for (key, vals) in obj {
        // Both wire forms: {"key": ["v"]} and the older {"key": {"v": true}}.
        let vals: Vec<&str> = match vals {
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            Value::Object(o) => o.keys().map(String::as_str).collect(),
            _ => return Err(ApiError::bad_request(format!("invalid filter '{key}'"))),
        };
        match key.as_str() {
            "dangling" => {
                for v in vals {
                    f.dangling_only = match v.to_ascii_lowercase().as_str() {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => {
                            return Err(ApiError::bad_request(format!(
                                "invalid filter 'dangling={v}'"
                            )))
                        }
                    };
                }
            }
            "until" => {
                let [v] = vals.as_slice() else {
                    return Err(ApiError::bad_request("more than one until filter"));
                };
                let t = parse_until(v, now).ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "invalid filter 'until={v}': not a timestamp or a duration"
                    ))
                })?;
                f.until = Some(t);
            }
            "label" | "label!" => f
                .labels
                .extend(vals.iter().map(|v| LabelFilter::parse(v, key == "label!"))),
            other => return Err(ApiError::bad_request(format!("invalid filter '{other}'"))),
        }
    }
    Ok(f)
}

/// Docker's `until`: Unix seconds (`1700000000`, `1700000000.5`), an RFC 3339 time or date, or
/// a Go duration before `now` (`90m`, `1h30m`, `24h`).
fn parse_until(s: &str, now: u64) -> Option<u64> {
    let s = s.trim();
    if let Some(d) = parse_go_duration(s) {
        return Some(now.saturating_sub(d));
    }
    if let Ok(secs) = s.split('.').next().unwrap_or("").parse::<u64>() {
        let frac = s.split_once('.').map_or("0", |(_, f)| f);
        if frac.bytes().all(|b| b.is_ascii_digit()) {
            return Some(secs);
        }
    }
    let full = if s.contains('T') {
        s.to_string()
    } else {
        format!("{s}T00:00:00Z")
    };
    let zoned = full.ends_with('Z')
        || full
            .get(full.len().saturating_sub(6)..)
            .is_some_and(|t| t.contains(['+', '-']));
    let full = if zoned { full } else { format!("{full}Z") };
    crate::engine::images::parse_rfc3339(&full)
}

/// Seconds in a Go duration (`1h30m`, `45s`, `1.5h`); sub-second units round down.
fn parse_go_duration(s: &str) -> Option<u64> {
    let mut rest = s;
    let mut total = 0f64;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n_end = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .filter(|i| *i > 0)?;
        let n: f64 = rest[..n_end].parse().ok()?;
        rest = &rest[n_end..];
        let u_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..u_end] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        total += n * unit;
        rest = &rest[u_end..];
    }
    Some(total as u64)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used, clippy::unwrap_used)]
    use super::*;

    #[test]
    fn prune_filters() {
        let now = 1_700_000_000;
        let f = prune_filter("", now).unwrap();
        assert!(f.dangling_only && f.until.is_none() && f.labels.is_empty());
        let f = prune_filter(
            r#"{"dangling":["false"],"until":["24h"],"label":["a=b"],"label!":["c"]}"#,
            now,
        )
        .unwrap();
        assert!(!f.dangling_only);
        assert_eq!(f.until, Some(now - 86_400));
        assert_eq!(
            f.labels,
            vec![
                LabelFilter::parse("a=b", false),
                LabelFilter::parse("c", true)
            ]
        );
        let f = prune_filter(r#"{"dangling":{"true":true}}"#, now).unwrap();
        assert!(f.dangling_only);
        assert!(prune_filter(r#"{"dangling":["maybe"]}"#, now).is_err());
        assert!(prune_filter(r#"{"reference":["x"]}"#, now).is_err());
        assert!(prune_filter(r#"{"until":["1h","2h"]}"#, now).is_err());
        assert!(prune_filter(r#"{"until":["soon"]}"#, now).is_err());
    }

    #[test]
    fn until_forms() {
        let now = 1_700_000_000;
        assert_eq!(parse_until("1h30m", now), Some(now - 5400));
        assert_eq!(parse_until("1.5h", now), Some(now - 5400));
        assert_eq!(parse_until("10s", now), Some(now - 10));
        assert_eq!(parse_until("1600000000", now), Some(1_600_000_000));
        assert_eq!(parse_until("1600000000.25", now), Some(1_600_000_000));
        assert_eq!(
            parse_until("2023-11-14T22:13:20Z", now),
            Some(1_700_000_000)
        );
        assert_eq!(parse_until("2023-11-14T22:13:20", now), Some(1_700_000_000));
        assert_eq!(parse_until("2023-11-14", now), Some(1_699_920_000));
        assert_eq!(
            parse_until("2023-11-15T00:13:20+02:00", now),
            Some(1_700_000_000)
        );
        assert_eq!(parse_until("10", now), Some(10));
        assert_eq!(parse_until("h", now), None);
        assert_eq!(parse_until("", now), None);
    }
}
