//! Process documents: what `create_process` takes ([`ProcessParameters`]), what a process's
//! properties are ([`ProcessStatus`]), and the small requests that act on a process (signal,
//! resize console, close a stdio handle). hcsshim `schema2/process_parameters.go`,
//! `process_status.go`, `process_modify_request.go`, `internal/cmd/cmd.go`.

use oci_spec::runtime::Process;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProcessParameters {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub application_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command_line: Option<String>,
    /// Used instead of `CommandLine` when set (argv already split).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command_args: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_directory: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restricted_token: Option<bool>,
    /// Give the process a terminal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub emulate_console: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub create_std_in_pipe: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub create_std_out_pipe: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub create_std_err_pipe: Option<bool>,
    /// `[height, width]` of the terminal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub console_size: Option<[u32; 2]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub use_existing_login: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub use_legacy_console: Option<bool>,
    /// For a Linux container: the OCI process to exec (takes precedence over the fields above).
    /// A missing `user` / `cwd` reads as Go's zero value, as hcsshim's does.
    #[serde(
        default,
        deserialize_with = "super::oci::process",
        skip_serializing_if = "Option::is_none"
    )]
    pub oci_process: Option<Process>,
    /// Run the process in the utility VM itself rather than in a container.
    #[serde(rename = "CreateInUtilityVM", skip_serializing_if = "Option::is_none")]
    pub create_in_utility_vm: Option<bool>,
}

/// The properties of a process (`HcsGetProcessProperties`); read after it exited for its code.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProcessStatus {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process_id: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exited: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<u32>,
    /// The HRESULT of the last wait on the process.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_wait_result: Option<i32>,
}

/// The options of a signal to a Linux process: `{"Signal": 15}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SignalOptions {
    #[serde(default)]
    pub signal: i32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProcessModifyOperation {
    ConsoleSize,
    CloseHandle,
}

/// `HcsModifyProcess`: resize the terminal or close one of the stdio pipes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProcessModifyRequest {
    pub operation: ProcessModifyOperation,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub console_size: Option<ConsoleSize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub close_handle: Option<CloseHandle>,
}

impl ProcessModifyRequest {
    pub fn resize_console(height: u16, width: u16) -> Self {
        ProcessModifyRequest {
            operation: ProcessModifyOperation::ConsoleSize,
            console_size: Some(ConsoleSize { height, width }),
            close_handle: None,
        }
    }

    pub fn close(handle: StdHandle) -> Self {
        ProcessModifyRequest {
            operation: ProcessModifyOperation::CloseHandle,
            console_size: None,
            close_handle: Some(CloseHandle { handle }),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConsoleSize {
    #[serde(default)]
    pub height: u16,
    #[serde(default)]
    pub width: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CloseHandle {
    pub handle: StdHandle,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StdHandle {
    StdIn,
    StdOut,
    StdErr,
    All,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::schema::testutil::*;

    #[test]
    fn process_parameters_all_fields() {
        let json = r#"{
            "ApplicationName": "cmd.exe", "CommandLine": "cmd /c echo hi", "CommandArgs": ["echo", "hi"],
            "User": "ContainerUser", "WorkingDirectory": "C:\\", "Environment": { "A": "1", "PATH": "/bin" },
            "RestrictedToken": false, "EmulateConsole": true, "CreateStdInPipe": true,
            "CreateStdOutPipe": true, "CreateStdErrPipe": false, "ConsoleSize": [24, 80],
            "UseExistingLogin": false, "UseLegacyConsole": false, "CreateInUtilityVM": true
        }"#;
        let p: ProcessParameters = assert_round_trip(json);
        assert_eq!(p.console_size, Some([24, 80]));
        assert_eq!(p.environment.unwrap()["PATH"], "/bin");
        assert_eq!(p.create_in_utility_vm, Some(true));
    }

    #[test]
    fn process_parameters_with_oci_process() {
        let json = r#"{ "OciProcess": { "args": ["/bin/sh", "-c", "id"], "cwd": "/", "env": ["A=1"],
                        "user": { "uid": 1000, "gid": 1000 }, "terminal": true },
                        "CreateStdOutPipe": true }"#;
        let p: ProcessParameters = assert_round_trip(json);
        let oci = p.oci_process.unwrap();
        assert_eq!(oci.user().uid(), 1000);
        assert_eq!(oci.args().as_ref().unwrap().len(), 3);

        // hcsshim may omit user and cwd (Go zero values).
        let p: ProcessParameters =
            assert_parse_round_trip(r#"{ "OciProcess": { "args": ["true"] }, "Unknown": 1 }"#);
        assert_eq!(p.oci_process.unwrap().user().uid(), 0);
    }

    #[test]
    fn process_status_and_signal() {
        let s: ProcessStatus = assert_round_trip(
            r#"{"ProcessId": 42, "Exited": true, "ExitCode": 137, "LastWaitResult": 0}"#,
        );
        assert_eq!(s.exit_code, Some(137));
        let sig: SignalOptions = assert_round_trip(r#"{"Signal": 15}"#);
        assert_eq!(sig.signal, 15);
    }

    #[test]
    fn process_modify_requests() {
        let r: ProcessModifyRequest = assert_round_trip(
            r#"{"Operation": "ConsoleSize", "ConsoleSize": {"Height": 40, "Width": 120}}"#,
        );
        assert_eq!(r, ProcessModifyRequest::resize_console(40, 120));
        let r: ProcessModifyRequest = assert_round_trip(
            r#"{"Operation": "CloseHandle", "CloseHandle": {"Handle": "StdIn"}}"#,
        );
        assert_eq!(r, ProcessModifyRequest::close(StdHandle::StdIn));
        assert!(
            serde_json::from_str::<ProcessModifyRequest>(r#"{"Operation": "Explode"}"#).is_err()
        );
    }

    #[test]
    fn unknown_fields_are_tolerated() {
        let json = r#"{"CommandArgs": ["a"], "ConsoleSize": [1, 2], "Future": {"x": 1}}"#;
        let p: ProcessParameters = serde_json::from_str(json).unwrap();
        assert_eq!(p.command_args.unwrap(), ["a"]);
        let r: ProcessModifyRequest = serde_json::from_str(&with_unknown_fields(
            r#"{"Operation": "ConsoleSize", "ConsoleSize": {"Height": 1, "Width": 2}}"#,
        ))
        .unwrap();
        assert_eq!(r, ProcessModifyRequest::resize_console(1, 2));
    }
}
