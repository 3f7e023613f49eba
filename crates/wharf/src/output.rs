//! How results are shown: docker-style tables, `--format json` (one compact object per line),
//! `--format table ...` and Go-template-like formats (`{{.State.Status}}`, `{{json .Config}}`),
//! human sizes and durations.

use std::io::Write;

use serde_json::Value;

use crate::error::{Error, Result};

/// A table written like docker's tabwriter (minimum width 10, padding 3).
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Table {
        Table {
            rows: vec![headers.iter().map(|s| s.to_string()).collect()],
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let cols = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut widths = vec![0usize; cols];
        for r in &self.rows {
            for (i, c) in r.iter().enumerate() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
        let mut out = String::new();
        for r in &self.rows {
            let mut line = String::new();
            for (i, c) in r.iter().enumerate() {
                line.push_str(c);
                if i + 1 < r.len() {
                    let w = (widths[i] + 3).max(10);
                    line.push_str(&" ".repeat(w - c.chars().count()));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    pub fn print(&self) -> Result<()> {
        print_str(&self.render())
    }
}

pub fn print_str(s: &str) -> Result<()> {
    let mut o = std::io::stdout().lock();
    o.write_all(s.as_bytes())
        .and_then(|_| o.flush())
        .map_err(|e| Error::io("write to stdout", e))
}

/// Indented JSON the way `docker inspect` prints it (4 spaces).
pub fn pretty(v: &Value) -> String {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    if serde::Serialize::serialize(v, &mut ser).is_err() {
        return v.to_string();
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// What `--format` asked for.
pub enum Format {
    /// The default table.
    Table,
    /// One compact JSON object per line.
    Json,
    /// `table {{.A}}\t{{.B}}`: a table with these columns.
    TableTemplate(String),
    /// A raw template applied to each item.
    Template(String),
}

impl Format {
    pub fn parse(f: Option<&str>) -> Format {
        let Some(f) = f.map(|s| s.replace("\\t", "\t").replace("\\n", "\n")) else {
            return Format::Table;
        };
        match f.trim() {
            "" | "table" => Format::Table,
            "json" => Format::Json,
            t if t.starts_with("table ") => Format::TableTemplate(t["table ".len()..].to_string()),
            _ => Format::Template(f),
        }
    }
}

/// Prints one field of every row, a line each (the `-q` of listing commands).
pub fn print_column(rows: &[Value], key: &str) -> Result<()> {
    print_str(
        &rows
            .iter()
            .map(|r| format!("{}\n", cell(&r[key])))
            .collect::<String>(),
    )
}

/// Docker's `Labels` object as listings show it: `k=v,k2=v2`.
pub fn labels_csv(labels: &Value) -> String {
    labels
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

/// Prints listing rows (each a JSON object keyed by docker's placeholder names) in `fmt`;
/// `table` gives the default columns as (header, key).
pub fn print_rows(rows: &[Value], fmt: &Format, table: &[(&str, &str)]) -> Result<()> {
    match fmt {
        Format::Json => {
            let s: String = rows.iter().map(|r| format!("{r}\n")).collect();
            print_str(&s)
        }
        Format::Template(t) => {
            let tpl = Template::parse(t)?;
            let mut s = String::new();
            for r in rows {
                s.push_str(&tpl.render(r)?);
                s.push('\n');
            }
            print_str(&s)
        }
        Format::Table => {
            let mut t = Table::new(&table.iter().map(|(h, _)| *h).collect::<Vec<_>>());
            for r in rows {
                t.row(table.iter().map(|(_, k)| cell(&r[*k])).collect());
            }
            t.print()
        }
        Format::TableTemplate(tpl) => {
            let cols: Vec<&str> = tpl.split('\t').collect();
            let heads: Vec<String> = cols.iter().map(|c| header_of(c)).collect();
            let mut t = Table::new(&heads.iter().map(String::as_str).collect::<Vec<_>>());
            let tpls = cols
                .iter()
                .map(|c| Template::parse(c))
                .collect::<Result<Vec<_>>>()?;
            for r in rows {
                t.row(
                    tpls.iter()
                        .map(|p| p.render(r))
                        .collect::<Result<Vec<_>>>()?,
                );
            }
            t.print()
        }
    }
}

/// `{{.RunningFor}}` → `RUNNING FOR`, `{{.ID}}` → `ID` (docker's headers are the field names
/// split at case changes).
fn header_of(col: &str) -> String {
    let name: String = col
        .split("{{")
        .filter_map(|p| {
            p.split_once("}}")
                .map(|(a, _)| a.trim().trim_start_matches('.').to_string())
        })
        .collect::<Vec<_>>()
        .join(" ");
    let mut out = String::new();
    let chars: Vec<char> = name.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        if i > 0 && c.is_uppercase() && chars[i - 1].is_lowercase() {
            out.push(' ');
        }
        out.extend(c.to_uppercase());
    }
    out
}

/// A cell's text: strings as they are, numbers and the rest as JSON.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        o => o.to_string(),
    }
}

/// A small subset of Go templates: literal text and `{{ [func] .Path.To.Field }}` actions with
/// `json`, `upper`, `lower`, `len`, `join . ","` and `index . "key"`.
pub struct Template {
    parts: Vec<Part>,
}

enum Part {
    Text(String),
    Action {
        func: Option<String>,
        path: Vec<String>,
        arg: Option<String>,
    },
}

impl Template {
    pub fn parse(src: &str) -> Result<Template> {
        let mut parts = Vec::new();
        let mut rest = src;
        while let Some(i) = rest.find("{{") {
            if i > 0 {
                parts.push(Part::Text(rest[..i].to_string()));
            }
            let after = &rest[i + 2..];
            let j = after.find("}}").ok_or_else(|| {
                Error::usage(format!(
                    "template parsing error: unclosed action in {src:?}"
                ))
            })?;
            parts.push(Self::action(after[..j].trim(), src)?);
            rest = &after[j + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Template { parts })
    }

    fn action(a: &str, src: &str) -> Result<Part> {
        let words: Vec<&str> = a.split_whitespace().collect();
        let (func, field, arg) = match words.as_slice() {
            [f] if f.starts_with('.') => (None, *f, None),
            [func, f] => (Some(func.to_string()), *f, None),
            [func, f, arg] => (
                Some(func.to_string()),
                *f,
                Some(arg.trim_matches('"').to_string()),
            ),
            _ => {
                return Err(Error::usage(format!(
                    "template: unsupported action {{{{{a}}}}} in {src:?}"
                )))
            }
        };
        if let Some(f) = &func {
            if !matches!(
                f.as_str(),
                "json" | "upper" | "lower" | "len" | "join" | "index" | "title"
            ) {
                return Err(Error::usage(format!(
                    "template: function {f:?} not defined"
                )));
            }
        }
        if !field.starts_with('.') {
            return Err(Error::usage(format!(
                "template: expected a field like .Name, got {field:?}"
            )));
        }
        let path = field
            .split('.')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        Ok(Part::Action { func, path, arg })
    }

    pub fn render(&self, v: &Value) -> Result<String> {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Action { func, path, arg } => {
                    let mut cur = v;
                    for k in path {
                        cur = lookup(cur, k);
                    }
                    let s = match (func.as_deref(), arg) {
                        (None, _) => go_text(cur),
                        (Some("json"), _) => cur.to_string(),
                        (Some("upper"), _) => go_text(cur).to_uppercase(),
                        (Some("lower"), _) => go_text(cur).to_lowercase(),
                        (Some("title"), _) => {
                            let t = go_text(cur);
                            let mut c = t.chars();
                            c.next()
                                .map(|f| f.to_uppercase().chain(c).collect())
                                .unwrap_or_default()
                        }
                        (Some("len"), _) => match cur {
                            Value::Array(a) => a.len().to_string(),
                            Value::Object(o) => o.len().to_string(),
                            Value::String(s) => s.len().to_string(),
                            _ => "0".into(),
                        },
                        (Some("join"), Some(sep)) => match cur {
                            Value::Array(a) => a.iter().map(go_text).collect::<Vec<_>>().join(sep),
                            o => go_text(o),
                        },
                        (Some("index"), Some(key)) => go_text(lookup(cur, key)),
                        (Some(f), _) => {
                            return Err(Error::usage(format!("template: {f} needs an argument")))
                        }
                    };
                    out.push_str(&s);
                }
            }
        }
        Ok(out)
    }
}

fn lookup<'a>(v: &'a Value, k: &str) -> &'a Value {
    static NULL: Value = Value::Null;
    match v {
        Value::Object(o) => o
            .get(k)
            .or_else(|| {
                o.iter()
                    .find(|(kk, _)| kk.eq_ignore_ascii_case(k))
                    .map(|(_, v)| v)
            })
            .unwrap_or(&NULL),
        Value::Array(a) => k
            .parse::<usize>()
            .ok()
            .and_then(|i| a.get(i))
            .unwrap_or(&NULL),
        _ => &NULL,
    }
}

/// How Go's text/template prints a value: strings bare, `[a b]` for lists, `map[k:v]`.
fn go_text(v: &Value) -> String {
    match v {
        Value::Null => "<no value>".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) => format!("[{}]", a.iter().map(go_text).collect::<Vec<_>>().join(" ")),
        Value::Object(o) => format!(
            "map[{}]",
            o.iter()
                .map(|(k, v)| format!("{k}:{}", go_text(v)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        o => o.to_string(),
    }
}

/// `%.{sig}g` of Go: `sig` significant digits, trailing zeros dropped.
fn sig_digits(v: f64, sig: usize) -> String {
    let int_digits = if v < 1.0 {
        1
    } else {
        (v.log10().floor() as usize) + 1
    };
    let decimals = sig.saturating_sub(int_digits);
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

fn scaled(n: f64, base: f64, units: &[&str], sig: usize) -> String {
    let mut v = n.max(0.0);
    let mut i = 0;
    while v >= base && i + 1 < units.len() {
        v /= base;
        i += 1;
    }
    format!("{}{}", sig_digits(v, sig), units[i])
}

/// Sizes as docker prints them (decimal units, 3 significant digits): `4.26MB`.
pub fn human_size(n: i64) -> String {
    scaled(n as f64, 1000.0, &["B", "kB", "MB", "GB", "TB", "PB"], 3)
}

/// Binary-unit sizes for memory (`stats`, 4 significant digits): `1.5MiB`.
pub fn human_bytes(n: u64) -> String {
    scaled(n as f64, 1024.0, &["B", "KiB", "MiB", "GiB", "TiB"], 4)
}

/// docker's `units.HumanDuration`.
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    let h = s / 3600;
    match s {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        2..=59 => format!("{s} seconds"),
        60..=119 => "About a minute".into(),
        120..=3599 => format!("{} minutes", s / 60),
        _ if h == 1 => "About an hour".into(),
        _ if h < 48 => format!("{h} hours"),
        _ if h < 24 * 7 * 2 => format!("{} days", h / 24),
        _ if h < 24 * 30 * 2 => format!("{} weeks", h / 24 / 7),
        _ if h < 24 * 365 * 2 => format!("{} months", h / 24 / 30),
        _ => format!("{} years", h / 24 / 365),
    }
}

pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// "3 minutes ago" from a unix time.
pub fn ago(unix: i64) -> String {
    format!("{} ago", human_duration(now_secs() - unix))
}

/// Seconds since the epoch of an RFC 3339 time (`2024-01-02T03:04:05.123Z`, `...+01:00`);
/// one without a zone is taken as UTC.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp());
    }
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|t| t.and_utc().timestamp())
}

/// A time flag (`--since 10m`, `--until 2024-01-02T03:04:05Z`, unix seconds) as the unix
/// seconds string the API takes.
pub fn time_arg(flag: &str, v: &str) -> Result<String> {
    if v.is_empty() || v.parse::<f64>().is_ok() {
        return Ok(v.to_string());
    }
    if let Some(t) = parse_rfc3339(v) {
        return Ok(t.to_string());
    }
    let d = parse_duration(v).ok_or_else(|| Error::usage(format!("invalid value for {flag}: {v:?} (a duration like 10m, an RFC 3339 time or unix seconds)")))?;
    Ok((now_secs() - d).to_string())
}

/// `1h30m`, `10s`, `2m` → seconds.
pub fn parse_duration(v: &str) -> Option<i64> {
    let mut total = 0f64;
    let mut num = String::new();
    let mut any = false;
    let chars: Vec<char> = v.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            i += 1;
            continue;
        }
        let mut unit = String::new();
        while i < chars.len() && chars[i].is_ascii_alphabetic() {
            unit.push(chars[i]);
            i += 1;
        }
        let n: f64 = num.parse().ok()?;
        num.clear();
        total += n * match unit.as_str() {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        any = true;
    }
    (any && num.is_empty()).then_some(total as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_pad_like_tabwriter() {
        let mut t = Table::new(&["A", "LONGER HEADER"]);
        t.row(vec!["x".into(), "y".into()]);
        assert_eq!(t.render(), "A         LONGER HEADER\nx         y\n");
    }

    #[test]
    fn templates() {
        let v = json!({"State": {"Status": "running", "Pid": 7}, "Config": {"Env": ["A=1", "B=2"]}, "Name": "/x"});
        let t = Template::parse("{{.State.Status}} {{.State.Pid}} {{json .Config.Env}} {{.Name}}")
            .expect("parse");
        assert_eq!(
            t.render(&v).expect("render"),
            r#"running 7 ["A=1","B=2"] /x"#
        );
        let t = Template::parse(
            r#"{{join .Config.Env ","}}|{{len .Config.Env}}|{{index .State "Status"}}"#,
        )
        .expect("parse");
        assert_eq!(t.render(&v).expect("render"), "A=1,B=2|2|running");
        assert!(Template::parse("{{.A").is_err());
        assert!(Template::parse("{{nope .A}}").is_err());
        assert_eq!(header_of("{{.RunningFor}}"), "RUNNING FOR");
    }

    #[test]
    fn sizes_and_times() {
        assert_eq!(human_size(4_261_000), "4.26MB");
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(1_500), "1.5kB");
        assert_eq!(human_size(123_456_789), "123MB");
        assert_eq!(human_bytes(1536 * 1024), "1.5MiB");
        assert_eq!(human_duration(90), "About a minute");
        assert_eq!(human_duration(3 * 86_400), "3 days");
        assert_eq!(parse_rfc3339("1970-01-02T00:00:01Z"), Some(86_401));
        assert_eq!(
            parse_rfc3339("2024-03-01T00:00:00.5+01:00"),
            Some(1_709_247_600)
        );
        assert_eq!(parse_duration("1h30m"), Some(5400));
        assert_eq!(parse_duration("10"), None);
        assert_eq!(
            time_arg("--since", "1700000000").expect("unix"),
            "1700000000"
        );
        assert!(time_arg("--since", "yesterday").is_err());
    }
}
