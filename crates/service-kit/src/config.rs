//! One typed config struct per service, from flags, an optional TOML file and the environment.
//!
//! Precedence: command-line flags, then the config file (`--config FILE` or `ITK_CONFIG`),
//! then environment variables, then defaults. The file's keys are the long flag names:
//!
//! ```toml
//! nats-url = "nats://nats:4222"
//! stream-replicas = 3
//! catalog = "/etc/infra-tickets/catalog.toml"
//! ```
//!
//! Parsing validates everything: a missing or malformed setting stops the service at start with
//! a message that names the flag and its environment variable.

use std::ffi::OsString;

use clap::Parser;

/// Why the config file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    /// Where, and which setting, never the line itself: it may hold a secret.
    #[error("config file {path} is not valid TOML at line {line}, column {column}{}: {reason}",
            key.as_deref().map(|k| format!(" (setting {k:?})")).unwrap_or_default())]
    Parse { path: String, line: usize, column: usize, key: Option<String>, reason: String },
    #[error("config file {path}: setting {key:?} must be a string, number, boolean or list of them")]
    Value { path: String, key: String },
}

/// Parses the process's arguments and environment; exits with clap's message on error.
pub fn parse<T: Parser>() -> T {
    parse_from(std::env::args_os())
}

/// [`parse`] with the arguments given (the program name first): the one-binary image passes the
/// arguments after the service's name.
pub fn parse_from<T: Parser>(args: impl IntoIterator<Item = OsString>) -> T {
    match try_parse_from::<T, _, _>(args, |name| std::env::var_os(name)) {
        Ok(config) => config,
        Err(ParseError::Clap(error)) => error.exit(),
        Err(ParseError::File(error)) => {
            eprintln!("error: {error}");
            std::process::exit(2);
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error(transparent)]
    Clap(#[from] clap::Error),
    #[error(transparent)]
    File(#[from] ConfigFileError),
}

/// Parses `args` with the config file they (or `env("ITK_CONFIG")`) name. Environment
/// variables are read by clap from the process environment.
pub fn try_parse_from<T, I, E>(args: I, env: E) -> Result<T, ParseError>
where
    T: Parser,
    I: IntoIterator<Item = OsString>,
    E: Fn(&str) -> Option<OsString>,
{
    let mut args: Vec<OsString> = args.into_iter().collect();
    let program = if args.is_empty() { OsString::from("service") } else { args.remove(0) };
    let (file, rest) = take_config_flag(args);
    let file = file.or_else(|| env("ITK_CONFIG"));
    let mut all = vec![program];
    if let Some(path) = file {
        all.extend(file_arguments(&path.to_string_lossy())?);
    }
    all.extend(rest);
    let matches = T::command().args_override_self(true).try_get_matches_from(all)?;
    Ok(T::from_arg_matches(&matches)?)
}

/// Words that mark an environment variable as holding a secret, or the path of a file that holds
/// one (a key, seed or credentials file: hiding a path costs nothing).
const SECRET_WORDS: &[&str] = &["TOKEN", "SECRET", "PASSWORD", "PASSWD", "KEY", "SEED", "CREDENTIAL"];

/// The `--flag (ENV)` of every argument of `command` and its subcommands whose environment
/// variable looks like a secret's and whose value `--help` would print when it is set (no
/// `hide_env_values`). Empty is right; each service's test asserts so.
pub fn secrets_shown_in_help(command: &clap::Command) -> Vec<String> {
    let mut shown = Vec::new();
    collect_shown_secrets(command, &mut shown);
    shown
}

fn collect_shown_secrets(command: &clap::Command, shown: &mut Vec<String>) {
    for arg in command.get_arguments() {
        let Some(env) = arg.get_env() else { continue };
        let env = env.to_string_lossy().to_ascii_uppercase();
        // Words of the name, so that MONKEY is not KEY.
        let secret_like = env.split('_').any(|word| SECRET_WORDS.iter().any(|w| word.starts_with(w)));
        if secret_like && !arg.is_hide_env_values_set() && !arg.is_hide_set() {
            let flag = arg.get_long().map_or_else(|| arg.get_id().to_string(), |long| format!("--{long}"));
            shown.push(format!("{} {flag} ({env})", command.get_name()));
        }
    }
    for sub in command.get_subcommands() {
        collect_shown_secrets(sub, shown);
    }
}

/// Removes `--config FILE` / `--config=FILE` from the arguments.
fn take_config_flag(args: Vec<OsString>) -> (Option<OsString>, Vec<OsString>) {
    let mut file = None;
    let mut rest = Vec::with_capacity(args.len());
    let mut iter = args.into_iter();
    while let Some(arg) = iter.next() {
        let text = arg.to_string_lossy();
        if text == "--config" {
            file = iter.next();
        } else if let Some(path) = text.strip_prefix("--config=") {
            file = Some(OsString::from(path));
        } else {
            rest.push(arg);
        }
    }
    (file, rest)
}

/// The file's settings as `--key value` arguments.
fn file_arguments(path: &str) -> Result<Vec<OsString>, ConfigFileError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| ConfigFileError::Read { path: path.to_owned(), source })?;
    let table: toml::Table = toml::from_str(&text).map_err(|error| parse_error(path, &text, &error))?;
    let mut arguments = Vec::new();
    for (key, value) in table {
        let flag = format!("--{}", key.replace('_', "-"));
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
                _ => return Err(ConfigFileError::Value { path: path.to_owned(), key }),
            };
            // One `--key=value` argument: a value that starts with `-` (a secret may) is then
            // read as the value, never as another flag.
            arguments.push(OsString::from(format!("{flag}={text}")));
        }
    }
    Ok(arguments)
}

/// The parse error without the source line that toml's `Display` quotes (a secret's line, as
/// like as not): its position, the key of that line when it is a plain key, and toml's reason.
fn parse_error(path: &str, text: &str, error: &toml::de::Error) -> ConfigFileError {
    let offset = error.span().map_or(0, |span| span.start).min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    let line_text = text[line_start..].lines().next().unwrap_or("");
    let key = line_text
        .split_once('=')
        .map(|(key, _)| key.trim())
        .filter(|key| {
            !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
        .map(str::to_owned);
    // The reason is toml's message only (for instance "invalid basic string"), never the input.
    let reason = error.message().lines().next().unwrap_or("malformed").to_owned();
    ConfigFileError::Parse { path: path.to_owned(), line, column, key, reason }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NatsArgs, Secret};
    use clap::CommandFactory;

    #[derive(Debug, Parser)]
    struct Example {
        #[command(flatten)]
        nats: NatsArgs,
        /// The API token.
        #[arg(long = "api-token", env = "EXAMPLE_API_TOKEN_FOR_TEST")]
        api_token: Secret,
        #[arg(long = "batch-size", default_value_t = 10)]
        batch_size: u32,
    }

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn a_missing_setting_is_named() {
        let err = try_parse_from::<Example, _, _>(args(&["x"]), |_| None).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("--api-token"), "{text}");
    }

    #[test]
    fn a_malformed_setting_is_named() {
        let err =
            try_parse_from::<Example, _, _>(args(&["x", "--api-token", "t", "--batch-size", "many"]), |_| {
                None
            })
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("--batch-size") && text.contains("many"), "{text}");
    }

    #[test]
    fn file_settings_apply_and_flags_win() {
        let dir = std::env::temp_dir().join(format!("itk-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.toml");
        std::fs::write(&path, "api_token = \"from-file\"\nbatch-size = 7\nnats-url = \"nats://file:4222\"\n")
            .unwrap();
        let path = path.to_string_lossy().to_string();
        let parsed: Example =
            try_parse_from(args(&["x", "--config", &path, "--batch-size", "9"]), |_| None).unwrap();
        assert_eq!(parsed.batch_size, 9);
        assert_eq!(parsed.api_token.expose(), "from-file");
        assert_eq!(parsed.nats.nats_url, "nats://file:4222");
        let debug = format!("{parsed:?}");
        assert!(!debug.contains("from-file"), "{debug}");
        let via_env: Example =
            try_parse_from(args(&["x"]), |name| (name == "ITK_CONFIG").then(|| OsString::from(&path)))
                .unwrap();
        assert_eq!(via_env.batch_size, 7);
    }

    #[test]
    fn a_malformed_file_names_the_line_and_key_but_never_echoes_the_secret() {
        let dir = tempfile::tempdir().unwrap();
        let canary = "canary-secret-4f1e9b";
        let malformed = [
            format!("batch-size = 7\napi-token = \"{canary}\n"),
            format!("batch-size = 7\napi-token = {canary}\n"),
            format!("api-token = \"{canary}\" trailing\n"),
            format!("[section\napi-token = \"{canary}\"\n"),
        ];
        for (index, content) in malformed.iter().enumerate() {
            let path = dir.path().join(format!("c{index}.toml"));
            std::fs::write(&path, content).unwrap();
            let path = path.to_string_lossy().to_string();
            let error =
                try_parse_from::<Example, _, _>(args(&["x", "--config", &path]), |_| None).unwrap_err();
            let text = format!("{error} {error:?}");
            assert!(!text.contains(canary), "the secret is echoed: {text}");
            assert!(text.contains("line "), "{text}");
        }
        let path = dir.path().join("c0.toml").to_string_lossy().to_string();
        let error = try_parse_from::<Example, _, _>(args(&["x", "--config", &path]), |_| None).unwrap_err();
        assert!(
            error.to_string().contains("line 2") && error.to_string().contains("\"api-token\""),
            "{error}"
        );
    }

    #[test]
    fn a_misspelt_key_in_the_file_is_named_without_its_value() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "api-tokn = \"canary-secret-77d2\"\napi-token = \"t\"\n").unwrap();
        let path = path.to_string_lossy().to_string();
        let error = try_parse_from::<Example, _, _>(args(&["x", "--config", &path]), |_| None).unwrap_err();
        let text = error.to_string();
        assert!(!text.contains("canary-secret-77d2"), "{text}");
        assert!(text.contains("api-tokn"), "{text}");
    }

    #[test]
    fn secrets_whose_environment_value_would_print_are_listed() {
        #[derive(Debug, Parser)]
        struct Leaky {
            #[arg(long = "hook-secret", env = "EXAMPLE_HOOK_SECRET")]
            hook_secret: Option<Secret>,
            #[arg(long = "api-token", env = "EXAMPLE_API_TOKEN", hide_env_values = true)]
            api_token: Option<Secret>,
            #[arg(long = "monkey", env = "EXAMPLE_MONKEY")]
            monkey: Option<String>,
        }
        assert_eq!(
            secrets_shown_in_help(&Leaky::command().name("leaky")),
            ["leaky --hook-secret (EXAMPLE_HOOK_SECRET)"]
        );
        #[derive(Debug, Parser)]
        struct OnlyNats {
            #[command(flatten)]
            nats: NatsArgs,
        }
        assert!(secrets_shown_in_help(&OnlyNats::command()).is_empty());
    }

    #[test]
    fn an_unreadable_file_is_named() {
        let err = try_parse_from::<Example, _, _>(args(&["x", "--config", "/nonexistent/c.toml"]), |_| None)
            .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/c.toml"));
    }
}
