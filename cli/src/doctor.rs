//! `infra-tickets doctor`: a preflight that reads the services' own configuration (flags,
//! environment, `--config FILE`) and checks every dependency they will use, printing a
//! checklist with ✓ / ✗ and, for each ✗, what to change. It writes nothing: every call it makes
//! is a read (NATS stream info, JIRA GETs and the read-only workflow query, Slack `auth.test`
//! and `conversations.history`, Snyk listings, AWS Describe calls).
//!
//! The shape: each dependency has a module whose pure functions turn the vendor's answers into
//! [`Check`]s with remedies (unit-tested without a network) and one async function that makes
//! the calls. Vendor text is untrusted: [`safe`] puts it on one line with control characters
//! escaped before it reaches the terminal or the JSON. Secrets are never part of a check.

pub mod aws;
pub mod catalog;
pub mod jira;
pub mod nats;
pub mod slack;
pub mod snyk;

use std::ffi::OsString;
use std::path::PathBuf;

use serde::Serialize;

/// One line of the checklist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What was checked, e.g. `jira: project PAY: create permission`.
    pub name: String,
    pub ok: bool,
    /// What was found (vendor text already made safe).
    pub detail: String,
    /// What to change when it failed; empty when ok.
    pub remedy: String,
}

impl Check {
    pub fn pass(name: impl Into<String>, detail: impl Into<String>) -> Check {
        Check { name: name.into(), ok: true, detail: detail.into(), remedy: String::new() }
    }

    pub fn fail(name: impl Into<String>, detail: impl Into<String>, remedy: impl Into<String>) -> Check {
        Check { name: name.into(), ok: false, detail: detail.into(), remedy: remedy.into() }
    }
}

/// Untrusted text on one line: control characters (newlines, escape sequences) are written as
/// `\n`, `\u{1b}`…, so a vendor's answer cannot forge checklist lines or drive the terminal; at
/// most `max` characters.
pub fn safe(text: &str, max: usize) -> String {
    let mut out = String::new();
    for (count, c) in text.chars().enumerate() {
        if count >= max {
            out.push('…');
            break;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control()
                || ('\u{202a}'..='\u{202e}').contains(&c)
                || ('\u{2066}'..='\u{2069}').contains(&c) =>
            {
                out.push_str(&format!("\\u{{{:x}}}", c as u32))
            }
            c => out.push(c),
        }
    }
    out
}

/// Vendor text in a detail: one line, at most 300 characters.
pub fn vendor(text: &str) -> String {
    safe(text, 300)
}

/// The services doctor knows the configuration of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Service {
    IngestSnyk,
    IngestHealth,
    Triage,
    JiraWriter,
    Notifier,
}

impl Service {
    pub const ALL: [Service; 5] =
        [Service::IngestSnyk, Service::IngestHealth, Service::Triage, Service::JiraWriter, Service::Notifier];

    pub fn name(self) -> &'static str {
        match self {
            Service::IngestSnyk => "ingest-snyk",
            Service::IngestHealth => "ingest-health",
            Service::Triage => "triage",
            Service::JiraWriter => "jira-writer",
            Service::Notifier => "notifier",
        }
    }
}

/// Check every dependency before go-live; exits non-zero on any ✗.
#[derive(Debug, Clone, clap::Args)]
pub struct DoctorArgs {
    /// Check only these services (repeat; default: all five).
    #[arg(long = "service", value_enum)]
    pub services: Vec<Service>,
    /// The services' TOML config file (the one they read with `--config`); the environment is
    /// read as each service reads it.
    #[arg(long = "config")]
    pub config: Option<PathBuf>,
    /// One JSON document instead of the checklist.
    #[arg(long)]
    pub json: bool,
    /// More settings, as the service takes them (`-- --jira-url https://…`); given to every
    /// checked service that has the flag.
    #[arg(last = true)]
    pub settings: Vec<String>,
}

/// Everything doctor found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub ok: bool,
    pub checks: Vec<Check>,
}

impl Report {
    pub fn new(checks: Vec<Check>) -> Report {
        Report { ok: checks.iter().all(|c| c.ok), checks }
    }

    /// The checklist for people.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for check in &self.checks {
            let mark = if check.ok { '✓' } else { '✗' };
            out.push_str(&format!("{mark} {}", check.name));
            if !check.detail.is_empty() {
                out.push_str(&format!(": {}", check.detail));
            }
            out.push('\n');
            if !check.ok && !check.remedy.is_empty() {
                out.push_str(&format!("    → {}\n", check.remedy));
            }
        }
        let failed = self.checks.iter().filter(|c| !c.ok).count();
        out.push_str(&format!("\n{} check(s), {failed} failed\n", self.checks.len()));
        out
    }
}

/// Parses service `T`'s configuration as the service would from its environment, the config
/// file (`--config` or `ITK_CONFIG`) and the extra settings. Settings another service has and
/// this one lacks are left out, from the file as from the `--` list: one file or list serves
/// every service.
fn parse_service<T: clap::Parser + clap::CommandFactory>(name: &str, args: &DoctorArgs) -> Result<T, String> {
    let command = T::command();
    let mut argv: Vec<OsString> = vec![name.into()];
    let file = args.config.clone().or_else(|| std::env::var_os("ITK_CONFIG").map(PathBuf::from));
    if let Some(file) = file {
        argv.extend(own_settings(&command, &file_settings(&file)?).into_iter().map(OsString::from));
    }
    argv.extend(own_settings(&command, &args.settings).into_iter().map(OsString::from));
    // The file is read above; the service's parser must not read ITK_CONFIG again.
    service_kit::config::try_parse_from::<T, _, _>(argv, |_| None)
        .map_err(|e| first_line_of_error(&e.to_string()))
}

/// A config file's settings as `--key=value` arguments, as `service_kit::config` reads them.
fn file_settings(path: &std::path::Path) -> Result<Vec<String>, String> {
    let shown = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read config file {shown}: {e}"))?;
    let table: toml::Table =
        toml::from_str(&text).map_err(|e| vendor(&format!("config file {shown} is not valid TOML: {e}")))?;
    let mut out = Vec::new();
    for (key, value) in table {
        let values = match value {
            toml::Value::Array(items) => items,
            one => vec![one],
        };
        for item in values {
            let text = match item {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                _ => {
                    return Err(format!(
                        "config file {shown}: setting {key:?} must be a string, number, boolean or list"
                    ));
                }
            };
            out.push(format!("--{}={text}", key.replace('_', "-")));
        }
    }
    Ok(out)
}

/// The flags (and their values) of `settings` that `command` knows.
fn own_settings(command: &clap::Command, settings: &[String]) -> Vec<String> {
    let known = |flag: &str| {
        let name = flag.trim_start_matches("--");
        let name = name.split_once('=').map_or(name, |(n, _)| n);
        command
            .get_arguments()
            .any(|a| a.get_long() == Some(name) || a.get_all_aliases().is_some_and(|all| all.contains(&name)))
    };
    let mut out = Vec::new();
    let mut keep = false;
    for item in settings {
        if item.starts_with("--") {
            keep = known(item);
        }
        if keep {
            out.push(item.clone());
        }
    }
    out
}

/// clap's message without its usage lines (it never holds a secret's value: secrets have no
/// possible values and clap names only the flag).
fn first_line_of_error(text: &str) -> String {
    let before_usage: Vec<&str> = text
        .lines()
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    vendor(before_usage.join(" ").trim_start_matches("error: "))
}

fn config_check(service: Service, parsed: Result<(), String>) -> Check {
    let name = format!("{}: configuration", service.name());
    match parsed {
        Ok(()) => Check::pass(name, "parsed"),
        Err(error) => Check::fail(
            name,
            error,
            format!(
                "set what it names (flag, environment variable or config file key) for {}",
                service.name()
            ),
        ),
    }
}

/// Runs every check of the services chosen.
pub async fn doctor(args: &DoctorArgs) -> Report {
    let services: Vec<Service> =
        if args.services.is_empty() { Service::ALL.to_vec() } else { args.services.clone() };
    let mut checks = Vec::new();
    let mut catalogs_seen: Vec<PathBuf> = Vec::new();
    let mut catalog_check = |path: &Option<PathBuf>, checks: &mut Vec<Check>| -> Option<catalog::Loaded> {
        let path = path.as_ref()?;
        let first = !catalogs_seen.contains(path);
        catalogs_seen.push(path.clone());
        let loaded = catalog::load(path);
        if first {
            checks.extend(catalog::checks(&loaded));
        }
        loaded.catalog.is_some().then_some(loaded)
    };
    for service in services {
        let label = service.name();
        match service {
            Service::Triage => match parse_service::<triage::Config>(label, args) {
                Ok(config) => {
                    checks.push(config_check(service, Ok(())));
                    checks.extend(nats::checks(label, &config.nats, &config.topology).await);
                    catalog_check(&config.catalog, &mut checks);
                }
                Err(e) => checks.push(config_check(service, Err(e))),
            },
            Service::IngestSnyk => match parse_service::<ingest_snyk::Config>(label, args) {
                Ok(config) => {
                    checks.push(config_check(service, Ok(())));
                    checks.extend(nats::checks(label, &config.nats, &config.topology).await);
                    checks.extend(snyk::checks(&config).await);
                }
                Err(e) => checks.push(config_check(service, Err(e))),
            },
            Service::IngestHealth => match parse_service::<ingest_health::Config>(label, args) {
                Ok(config) => {
                    checks.push(config_check(service, Ok(())));
                    checks.extend(nats::checks(label, &config.nats, &config.topology).await);
                    checks.extend(aws::checks(&config).await);
                }
                Err(e) => checks.push(config_check(service, Err(e))),
            },
            Service::JiraWriter => match parse_service::<jira_writer::Config>(label, args) {
                Ok(config) => {
                    checks.push(config_check(service, Ok(())));
                    checks.extend(nats::checks(label, &config.nats, &config.topology).await);
                    let loaded = catalog_check(&config.catalog, &mut checks);
                    checks.extend(jira::writer_checks(&config, loaded.and_then(|l| l.catalog)).await);
                }
                Err(e) => checks.push(config_check(service, Err(e))),
            },
            Service::Notifier => match parse_service::<notifier::Config>(label, args) {
                Ok(config) => {
                    checks.push(config_check(service, Ok(())));
                    checks.extend(nats::checks(label, &config.nats, &config.topology).await);
                    let loaded = catalog_check(&config.catalog, &mut checks);
                    let catalog = loaded.and_then(|l| l.catalog);
                    checks.extend(slack::checks(&config, catalog.as_ref()).await);
                    checks.extend(jira::notifier_checks(&config).await);
                }
                Err(e) => checks.push(config_check(service, Err(e))),
            },
        }
    }
    Report::new(checks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendor_text_stays_on_one_line_without_terminal_controls() {
        assert_eq!(safe("a\nb\r\u{1b}[31mred\u{7}", 100), "a\\nb\\r\\u{1b}[31mred\\u{7}");
        assert_eq!(safe("right-to-left \u{202e}txt", 100), "right-to-left \\u{202e}txt");
        assert_eq!(safe("abcdef", 3), "abc…");
        assert_eq!(safe("Zürich ✓", 100), "Zürich ✓");
    }

    #[test]
    fn the_checklist_marks_failures_and_says_what_to_change() {
        let report = Report::new(vec![
            Check::pass("nats: connects", "nats://127.0.0.1:4222"),
            Check::fail("slack: scopes", "chat:write missing", "add chat:write to the app"),
        ]);
        assert!(!report.ok);
        let text = report.render();
        assert!(text.contains("✓ nats: connects: nats://127.0.0.1:4222\n"), "{text}");
        assert!(
            text.contains("✗ slack: scopes: chat:write missing\n    → add chat:write to the app\n"),
            "{text}"
        );
        assert!(text.ends_with("2 check(s), 1 failed\n"), "{text}");
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["ok"], false);
        assert_eq!(json["checks"][1]["remedy"], "add chat:write to the app");
    }

    #[test]
    fn each_service_takes_only_its_own_flags_from_the_shared_list() {
        #[derive(clap::Parser)]
        struct One {
            #[arg(long)]
            jira_url: Option<String>,
        }
        let settings: Vec<String> =
            ["--jira-url", "https://x", "--slack-bot-token", "xoxb", "--jira-url=https://y"]
                .iter()
                .map(|s| (*s).to_owned())
                .collect();
        let own = own_settings(&<One as clap::CommandFactory>::command(), &settings);
        assert_eq!(own, ["--jira-url", "https://x", "--jira-url=https://y"]);
    }
}
