//! Test helpers shared by the schema tests.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::fmt::Debug;

/// The example documents of hcsshim.md §1.8 (and a few built from its prose).
pub const EXAMPLE_WINDOWS_CONTAINER: &str = include_str!("testdata/windows-container.json");
pub const EXAMPLE_LCOW_UVM: &str = include_str!("testdata/lcow-uvm.json");
pub const EXAMPLE_LCOW_CONTAINER: &str = include_str!("testdata/lcow-container.json");
pub const EXAMPLE_MODIFY_SCSI_ATTACH: &str = include_str!("testdata/modify-scsi-attach.json");
pub const EXAMPLE_MODIFY_GUEST_MOUNT: &str = include_str!("testdata/modify-guest-mount.json");
pub const EXAMPLE_MODIFY_OVERLAY: &str = include_str!("testdata/modify-overlay.json");
pub const EXAMPLE_MODIFY_PLAN9: &str = include_str!("testdata/modify-plan9.json");

/// Parses `json` as `T`, serializes it, parses that again and checks:
/// the two parses are equal, and the serialized output equals the input JSON value
/// (same keys with the same spelling, nothing lost, nothing added).
pub fn assert_round_trip<T>(json: &str) -> T
where
    T: DeserializeOwned + Serialize + PartialEq + Debug,
{
    let parsed = assert_parse_round_trip::<T>(json);
    let input: Value = serde_json::from_str(json).unwrap();
    let output = serde_json::to_value(&parsed).unwrap();
    assert_eq!(
        output, input,
        "serialized output differs from the input document"
    );
    parsed
}

/// Parse -> serialize -> parse gives an equal value.
pub fn assert_parse_round_trip<T>(json: &str) -> T
where
    T: DeserializeOwned + Serialize + PartialEq + Debug,
{
    let parsed: T = serde_json::from_str(json).unwrap();
    let text = serde_json::to_string(&parsed).unwrap();
    let again: T = serde_json::from_str(&text).unwrap();
    assert_eq!(
        again, parsed,
        "parse -> serialize -> parse changed the value"
    );
    parsed
}

/// Every key and value of `input` appears, with the same spelling, in `output` (which may have
/// more keys).
pub fn assert_contains(output: &Value, input: &Value, path: &str) {
    match (output, input) {
        (Value::Object(out), Value::Object(inp)) => {
            for (key, value) in inp {
                let Some(o) = out.get(key) else {
                    panic!("{path}.{key} is missing from the serialized output");
                };
                assert_contains(o, value, &format!("{path}.{key}"));
            }
        }
        (Value::Array(out), Value::Array(inp)) => {
            assert_eq!(out.len(), inp.len(), "{path}: array length");
            for (i, (o, v)) in out.iter().zip(inp).enumerate() {
                assert_contains(o, v, &format!("{path}[{i}]"));
            }
        }
        _ => assert_eq!(output, input, "{path}"),
    }
}

/// Fields whose value is a map keyed by ids (or free-form JSON), not a document with a fixed set
/// of keys: an extra key there is data, not an unknown field.
const MAP_FIELDS: &[&str] = &[
    "Scsi",
    "Attachments",
    "ComPorts",
    "NetworkAdapters",
    "Devices",
    "ServiceTable",
    "Environment",
    "Queries",
    "PropertyResponses",
    "Settings",
    "VirtualPci",
];

/// Adds an unknown field to every JSON object in the document that is a document.
pub fn with_unknown_fields(json: &str) -> String {
    fn add(value: &mut Value, is_map: bool) {
        match value {
            Value::Object(map) => {
                for (key, v) in map.iter_mut() {
                    add(v, MAP_FIELDS.contains(&key.as_str()));
                }
                if !is_map {
                    map.insert(
                        "FieldFromTheFuture".into(),
                        serde_json::json!({ "x": [1, 2] }),
                    );
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| add(v, false)),
            _ => {}
        }
    }
    let mut value: Value = serde_json::from_str(json).unwrap();
    add(&mut value, false);
    value.to_string()
}
