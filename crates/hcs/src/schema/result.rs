//! The result document that HCS returns with a failed call, and the well-known HRESULTs
//! (hcsshim `internal/hcs/errors.go`).

use serde::{Deserialize, Serialize};

/// `{"Error": <HRESULT>, "ErrorMessage": "...", "ErrorEvents": [...]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ResultDocument {
    /// The HRESULT as Go's `int32` (failures are negative); see [`ResultDocument::hresult`].
    #[serde(default)]
    pub error: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_events: Option<Vec<ErrorEvent>>,
}

impl ResultDocument {
    pub fn new(hresult: u32, message: impl Into<String>) -> Self {
        ResultDocument {
            // HRESULTs are 32-bit patterns; the document stores them signed.
            error: i32::from_ne_bytes(hresult.to_ne_bytes()),
            error_message: Some(message.into()),
            error_events: None,
        }
    }

    /// The HRESULT as the unsigned pattern it is usually written in (`0xC0370103`).
    pub fn hresult(&self) -> u32 {
        u32::from_ne_bytes(self.error.to_ne_bytes())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ErrorEvent {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stack_trace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flags: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// Well-known HRESULTs of the compute service.
pub mod hresult {
    pub const OPERATION_PENDING: u32 = 0xC037_0103;
    pub const INVALID_STATE: u32 = 0xC037_0105;
    pub const UNEXPECTED_EXIT: u32 = 0xC037_0106;
    pub const UNKNOWN_MESSAGE: u32 = 0xC037_010B;
    pub const INVALID_JSON: u32 = 0xC037_010D;
    pub const COMPUTE_SYSTEM_DOES_NOT_EXIST: u32 = 0xC037_010E;
    pub const ALREADY_STOPPED: u32 = 0xC037_0110;
    pub const SYSTEM_ALREADY_STOPPED: u32 = 0x8037_0110;
    pub const PROCESS_ALREADY_STOPPED: u32 = 0x8037_011F;
    pub const ELEMENT_NOT_FOUND: u32 = 0x8007_0490;
    pub const NOT_SUPPORTED: u32 = 0x8007_0032;
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::schema::testutil::*;

    #[test]
    fn result_document_keys() {
        let json = r#"{"Error": -1070137077, "ErrorMessage": "The compute system exited unexpectedly",
            "ErrorEvents": [{"Message": "m", "StackTrace": "s", "Provider": "p", "EventId": 12,
                             "Flags": 0, "Source": "src"}]}"#;
        let doc: ResultDocument = assert_round_trip(json);
        assert_eq!(doc.hresult(), 0xC037_010B);
        assert_eq!(doc.error_events.as_ref().unwrap()[0].event_id, Some(12));
        let built = ResultDocument::new(hresult::UNEXPECTED_EXIT, "x");
        assert_eq!(built.hresult(), hresult::UNEXPECTED_EXIT);
        assert!(built.error < 0);
        let _: ResultDocument = serde_json::from_str(&with_unknown_fields(json)).unwrap();
    }
}
