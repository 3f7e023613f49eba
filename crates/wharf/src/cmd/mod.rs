//! One module per group of verbs; each function parses nothing itself (clap did), calls the
//! API and prints. `dispatch` is the only place that knows every verb.

mod container;
mod copy;
mod exec;
mod image;
mod inspect;
mod network;
mod run;
mod system;
mod volume;

use std::io::{BufRead, IsTerminal, Write};

use serde_json::{json, Map, Value};

use crate::cli::{Cli, Cmd, ContainerCmd, ImageCmd, NetworkCmd, SystemCmd, VolumeCmd};
use crate::client::{Client, Host};
use crate::error::{Error, Result};

pub async fn dispatch(cli: Cli) -> Result<()> {
    // Completion needs no daemon.
    if let Cmd::Completion { shell } = &cli.cmd {
        return system::completion(*shell);
    }
    let host = Host::resolve(cli.host.as_deref())?;
    let c = Client::new(&host).await?;
    match cli.cmd {
        Cmd::Run(a) | Cmd::Container(ContainerCmd::Run(a)) => run::run(&c, a).await,
        Cmd::Create(a) | Cmd::Container(ContainerCmd::Create(a)) => run::create(&c, a).await,
        Cmd::Start(a) | Cmd::Container(ContainerCmd::Start(a)) => run::start(&c, a).await,
        Cmd::Stop(a) | Cmd::Container(ContainerCmd::Stop(a)) => {
            container::stop(&c, a, "stop").await
        }
        Cmd::Restart(a) => container::stop(&c, a, "restart").await,
        Cmd::Kill(a) => container::kill(&c, a).await,
        Cmd::Pause(n) => container::simple(&c, &n.names, "pause").await,
        Cmd::Unpause(n) => container::simple(&c, &n.names, "unpause").await,
        Cmd::Rm(a) | Cmd::Container(ContainerCmd::Rm(a)) => container::rm(&c, a).await,
        Cmd::Rename {
            container,
            new_name,
        } => container::rename(&c, &container, &new_name).await,
        Cmd::Ps(a) | Cmd::Container(ContainerCmd::Ls(a)) => container::ps(&c, a).await,
        Cmd::Container(ContainerCmd::Prune(a)) => container::prune(&c, a).await,
        Cmd::Logs(a) | Cmd::Container(ContainerCmd::Logs(a)) => exec::logs(&c, a).await,
        Cmd::Attach(a) => exec::attach(&c, a).await,
        Cmd::Exec(a) | Cmd::Container(ContainerCmd::Exec(a)) => exec::exec(&c, a).await,
        Cmd::Wait(n) => container::wait(&c, &n.names).await,
        Cmd::Top { container } => container::top(&c, &container).await,
        Cmd::Stats(a) => container::stats(&c, a).await,
        Cmd::Port { container, port } => container::port(&c, &container, port.as_deref()).await,
        Cmd::Inspect(a) => inspect::inspect(&c, a, None).await,
        Cmd::Container(ContainerCmd::Inspect(a)) => {
            inspect::inspect(&c, a, Some("container")).await
        }
        Cmd::Image(ImageCmd::Inspect(a)) => inspect::inspect(&c, a, Some("image")).await,
        Cmd::Network(NetworkCmd::Inspect(a)) => inspect::inspect(&c, a, Some("network")).await,
        Cmd::Volume(VolumeCmd::Inspect(a)) => inspect::inspect(&c, a, Some("volume")).await,
        Cmd::Cp(a) => copy::cp(&c, a).await,
        Cmd::Commit(a) => copy::commit(&c, a).await,
        Cmd::Pull(a) | Cmd::Image(ImageCmd::Pull(a)) => image::pull(&c, a).await,
        Cmd::Push(a) | Cmd::Image(ImageCmd::Push(a)) => image::push(&c, a).await,
        Cmd::Images(a) | Cmd::Image(ImageCmd::Ls(a)) => image::images(&c, a).await,
        Cmd::Rmi(a) | Cmd::Image(ImageCmd::Rm(a)) => image::rmi(&c, a).await,
        Cmd::Tag { source, target } | Cmd::Image(ImageCmd::Tag { source, target }) => {
            image::tag(&c, &source, &target).await
        }
        Cmd::History(a) | Cmd::Image(ImageCmd::History(a)) => image::history(&c, a).await,
        Cmd::Save(a) | Cmd::Image(ImageCmd::Save(a)) => image::save(&c, a).await,
        Cmd::Load(a) | Cmd::Image(ImageCmd::Load(a)) => image::load(&c, a).await,
        Cmd::Import(a) | Cmd::Image(ImageCmd::Import(a)) => image::import(&c, a).await,
        Cmd::Image(ImageCmd::Prune(a)) => image::prune(&c, a).await,
        Cmd::Network(n) => network::run(&c, n).await,
        Cmd::Volume(v) => volume::run(&c, v).await,
        Cmd::Info(f) | Cmd::System(SystemCmd::Info(f)) => system::info(&c, f).await,
        Cmd::Version(f) => system::version(&c, f).await,
        Cmd::Events(a) | Cmd::System(SystemCmd::Events(a)) => system::events(&c, a).await,
        Cmd::System(SystemCmd::Df(f)) => system::df(&c, f).await,
        Cmd::System(SystemCmd::Prune(a)) => system::prune(&c, a).await,
        Cmd::Completion { .. } => Ok(()),
    }
}

/// `-f key=value` flags as the API's `filters` JSON (`{"key":{"value":true}}`).
pub fn filters(list: &[String]) -> Result<String> {
    let mut m: Map<String, Value> = Map::new();
    for f in list {
        let (k, v) = f.split_once('=').ok_or_else(|| {
            Error::usage(format!("bad format of filter (expected name=value): {f:?}"))
        })?;
        let e = m
            .entry(k.trim().to_lowercase())
            .or_insert_with(|| json!({}));
        if let Some(o) = e.as_object_mut() {
            o.insert(v.to_string(), json!(true));
        }
    }
    Ok(if m.is_empty() {
        String::new()
    } else {
        Value::Object(m).to_string()
    })
}

/// Asks for confirmation (prune); `force` skips the question.
pub fn confirm(force: bool, warning: &str) -> Result<bool> {
    if force {
        return Ok(true);
    }
    eprint!("{warning}\nAre you sure you want to continue? [y/N] ");
    drop(std::io::stderr().flush());
    if !std::io::stdin().is_terminal() {
        eprintln!();
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Error::io("read answer", e))?;
    Ok(matches!(line.trim().to_lowercase().as_str(), "y" | "yes"))
}

/// Reads `--env-file` files: `KEY=value` lines, `KEY` alone takes the local value, `#`
/// comments and blank lines are skipped.
pub fn read_env_files(files: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for f in files {
        let text =
            std::fs::read_to_string(f).map_err(|e| Error::io(format!("--env-file {f}"), e))?;
        for line in text.lines() {
            let l = line.trim_start();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            out.push(expand_env(l));
        }
    }
    Ok(out)
}

/// `-e KEY` (no `=`) takes KEY's value from this process's environment, or is dropped.
pub fn expand_env(e: &str) -> String {
    if e.contains('=') {
        e.to_string()
    } else {
        match std::env::var(e) {
            Ok(v) => format!("{e}={v}"),
            Err(_) => e.to_string(),
        }
    }
}

/// `a=b` labels as a map; `a` alone gets an empty value.
pub fn labels(list: &[String]) -> Map<String, Value> {
    list.iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_string(), json!(v)),
            None => (l.clone(), json!("")),
        })
        .collect()
}

/// Runs `f` for each name, printing errors and the name on success (docker's multi-object
/// verbs); fails at the end if any failed.
pub async fn each<F, Fut>(names: &[String], print: bool, mut f: F) -> Result<()>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let mut failed = false;
    for n in names {
        match f(n.clone()).await {
            Ok(()) => {
                if print {
                    println!("{n}");
                }
            }
            Err(e) => {
                eprintln!("{e}");
                failed = true;
            }
        }
    }
    if failed {
        Err(Error::Status(1))
    } else {
        Ok(())
    }
}

/// The first 12 hex digits of an ID (without `sha256:`), as tables show it.
pub fn short_id(id: &str, no_trunc: bool) -> String {
    if no_trunc {
        return id.to_string();
    }
    let s = id.strip_prefix("sha256:").unwrap_or(id);
    s.chars().take(12).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_json() {
        assert_eq!(filters(&[]).expect("empty"), "");
        let f = filters(&["status=exited".into(), "label=a=b".into()]).expect("filters");
        let v: Value = serde_json::from_str(&f).expect("json");
        assert_eq!(v["status"]["exited"], json!(true));
        assert_eq!(v["label"]["a=b"], json!(true));
        assert!(filters(&["nope".into()]).is_err());
    }

    #[test]
    fn ids_and_labels() {
        assert_eq!(short_id("sha256:0123456789abcdef", false), "0123456789ab");
        assert_eq!(
            labels(&["a=1".into(), "b".into()]),
            serde_json::from_value::<Map<String, Value>>(json!({"a":"1","b":""})).expect("map")
        );
    }
}
