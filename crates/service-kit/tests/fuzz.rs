//! Bad input for configuration (`service_kit::config::try_parse_from`): arbitrary arguments,
//! known flags with wrong values, and arbitrary or damaged TOML config files. Nothing panics; a
//! refusal says what is wrong (clap's message naming the flag, or the file's path); a secret
//! never appears in an error or in `Debug` output.
//!
//! `PROPTEST_CASES=20000 cargo test -p service-kit --test fuzz` runs a long form
//! (docs/reliability.md records its time).

use std::ffi::OsString;
use std::io::Write as _;

use clap::Parser;
use proptest::prelude::*;
use service_kit::config::{ConfigFileError, ParseError, try_parse_from};
use service_kit::{HttpArgs, NatsArgs, Secret, TelemetryArgs, TopologyArgs};

fn cases(default: u32) -> ProptestConfig {
    // PROPTEST_CASES, when set, wins over the default (the long run by hand).
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(default);
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

/// A service config as the services write theirs.
#[derive(Debug, Parser)]
struct Config {
    #[command(flatten)]
    nats: NatsArgs,
    #[command(flatten)]
    topology: TopologyArgs,
    #[command(flatten)]
    http: HttpArgs,
    #[command(flatten)]
    telemetry: TelemetryArgs,
    /// The API token.
    #[arg(long = "api-token", env = "ITK_FUZZ_API_TOKEN_NEVER_SET")]
    api_token: Secret,
    #[arg(long = "batch-size", env = "ITK_FUZZ_BATCH_SIZE_NEVER_SET", default_value_t = 10)]
    batch_size: u32,
}

const FLAGS: [&str; 13] = [
    "--nats-url",
    "--nats-credentials",
    "--stream-replicas",
    "--raw-max-age",
    "--raw-max-bytes",
    "--duplicate-window",
    "--ack-wait",
    "--max-deliver",
    "--listen",
    "--log-format",
    "--log-level",
    "--batch-size",
    "--config",
];

fn argument() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(FLAGS.to_vec()).prop_map(str::to_owned),
        prop::sample::select(FLAGS.to_vec()).prop_map(|f| format!("{f}=")),
        Just("--".to_owned()),
        Just("-h".to_owned()),
        Just("--version".to_owned()),
        Just("0".to_owned()),
        Just("-1".to_owned()),
        Just("99999999999999999999".to_owned()),
        Just("30d".to_owned()),
        Just("1000000000000y".to_owned()),
        Just("127.0.0.1:0".to_owned()),
        Just("[::1]:99999".to_owned()),
        Just("json".to_owned()),
        Just("/nonexistent/config.toml".to_owned()),
        ".{0,20}",
    ]
}

/// The secret is given whole (`--api-token=…`), so nothing else can claim it as its value.
fn secret() -> impl Strategy<Value = String> {
    "[A-Za-z0-9]{12,24}".prop_map(|s| format!("tok-{s}"))
}

fn check(result: Result<Config, ParseError>, secret: &str) -> Result<(), TestCaseError> {
    match result {
        Ok(config) => {
            prop_assert_eq!(config.api_token.expose(), secret);
            let debug = format!("{config:?}");
            prop_assert!(!debug.contains(secret), "{debug}");
            prop_assert!((1..=5).contains(&config.topology.stream_replicas));
            prop_assert!(config.topology.max_deliver >= 2);
        }
        Err(error) => {
            let message = error.to_string();
            prop_assert!(!message.trim().is_empty());
            prop_assert!(!message.contains(secret), "the secret is in the error: {message}");
            prop_assert!(!format!("{error:?}").contains(secret), "the secret is in the error's Debug");
            if let ParseError::File(file) = &error {
                prop_assert!(message.contains("config file"), "{message}");
                let _ = file;
            }
        }
    }
    Ok(())
}

fn toml_file(text: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().expect("a temp file");
    file.write_all(text.as_bytes()).expect("write the config file");
    file
}

fn args(list: impl IntoIterator<Item = String>) -> Vec<OsString> {
    list.into_iter().map(OsString::from).collect()
}

proptest! {
    #![proptest_config(cases(2_000))]

    #[test]
    fn arbitrary_arguments_are_refused_with_a_reason_or_parsed(
        arguments in prop::collection::vec(argument(), 0..10),
        secret in secret(),
    ) {
        let mut list = vec!["service".to_owned(), format!("--api-token={secret}")];
        list.extend(arguments);
        check(try_parse_from(args(list), |_| None), &secret)?;
    }
}

fn setting() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        prop::sample::select(FLAGS[..12].to_vec()).prop_map(|f| f.trim_start_matches("--").to_owned()),
        prop::sample::select(FLAGS[..12].to_vec()).prop_map(|f| f.trim_start_matches("--").replace('-', "_")),
        "[a-z_-]{1,12}",
    ];
    let value = prop_oneof![
        Just("\"nats://127.0.0.1:4222\"".to_owned()),
        Just("3".to_owned()),
        Just("0".to_owned()),
        Just("-1".to_owned()),
        Just("9223372036854775807".to_owned()),
        Just("1.5".to_owned()),
        Just("true".to_owned()),
        Just("1979-05-27T07:32:00Z".to_owned()),
        Just("{ a = 1 }".to_owned()),
        Just("[1, \"two\", 3.0]".to_owned()),
        Just("[[1]]".to_owned()),
        Just("\"-5\"".to_owned()),
        Just("\"--listen\"".to_owned()),
        "\"[^\"\\\\\n]{0,30}\"",
    ];
    (key, value).prop_map(|(key, value)| format!("{key} = {value}"))
}

proptest! {
    #![proptest_config(cases(1_000))]

    #[test]
    fn arbitrary_config_files_are_refused_naming_the_file_or_parsed(
        lines in prop::collection::vec(prop_oneof![setting(), ".{0,40}"], 0..8),
        flags in prop::collection::vec(argument(), 0..4),
        secret in secret(),
    ) {
        let file = toml_file(&lines.join("\n"));
        let path = file.path().to_string_lossy().into_owned();
        let mut list = vec!["service".to_owned(), format!("--api-token={secret}"), "--config".to_owned(), path.clone()];
        list.extend(flags.into_iter().filter(|f| !f.starts_with("--config")));
        let result = try_parse_from(args(list), |_| None);
        if let Err(ParseError::File(error)) = &result {
            prop_assert!(error.to_string().contains(&path), "{error}");
        }
        check(result, &secret)?;
    }

    /// The secret written in the config file: read exactly, or refused without showing it.
    #[test]
    fn a_secret_in_the_config_file_is_read_or_refused_without_showing_it(
        secret in "[!-~&&[^\"\\\\]]{12,24}",
    ) {
        let file = toml_file(&format!("api-token = \"{secret}\"\n"));
        let path = file.path().to_string_lossy().into_owned();
        let result = try_parse_from::<Config, _, _>(args(["service".to_owned(), "--config".to_owned(), path]), |_| None);
        match result {
            Ok(config) => prop_assert_eq!(config.api_token.expose(), secret.as_str()),
            Err(error) => {
                let message = error.to_string();
                prop_assert!(!message.contains(&secret), "the secret is in the error: {message}");
            }
        }
    }
}

#[test]
fn refusals_say_what_is_wrong() {
    let parse = |list: &[&str]| {
        let mut all = vec!["service", "--api-token=tok-abcdefabcdef"];
        all.extend(list);
        try_parse_from::<Config, _, _>(args(all.iter().map(|s| (*s).to_owned())), |_| None)
            .map(|_| ())
            .unwrap_err()
            .to_string()
    };
    let error = parse(&["--stream-replicas", "7"]);
    assert!(error.contains("--stream-replicas") && error.contains("7"), "{error}");
    let error = parse(&["--raw-max-age", "soon"]);
    assert!(error.contains("--raw-max-age") && error.contains("examples: 30s, 15m, 2h, 30d"), "{error}");
    let error = parse(&["--listen", "localhost"]);
    assert!(error.contains("--listen") && error.contains("localhost"), "{error}");
    let error = parse(&["--max-deliver", "1"]);
    assert!(error.contains("--max-deliver"), "{error}");
    let error = parse(&["--config", "/nonexistent/itk.toml"]);
    assert!(error.contains("cannot read config file /nonexistent/itk.toml"), "{error}");

    let file = toml_file("batch-size = { a = 1 }\n");
    let path = file.path().to_string_lossy().into_owned();
    let error =
        try_parse_from::<Config, _, _>(args(["service".into(), "--config".into(), path.clone()]), |_| None)
            .unwrap_err();
    assert!(
        matches!(&error, ParseError::File(ConfigFileError::Value { key, .. }) if key == "batch-size"),
        "{error}"
    );
    assert!(error.to_string().contains("must be a string, number, boolean or list of them"), "{error}");

    let file = toml_file("batch-size = \n");
    let path = file.path().to_string_lossy().into_owned();
    let error =
        try_parse_from::<Config, _, _>(args(["service".into(), "--config".into(), path.clone()]), |_| None)
            .unwrap_err()
            .to_string();
    assert!(error.contains(&path) && error.contains("not valid TOML"), "{error}");
}

/// Found by `a_secret_in_the_config_file_is_read_or_refused_without_showing_it` with 20,000 cases.
#[test]
fn a_secret_starting_with_two_dashes_in_the_config_file_is_read_and_never_shown() {
    let secret = "--A!0#a]!!aa";
    let file = toml_file(&format!("api-token = \"{secret}\"\n"));
    let path = file.path().to_string_lossy().into_owned();
    let result =
        try_parse_from::<Config, _, _>(args(["service".to_owned(), "--config".to_owned(), path]), |_| None);
    match result {
        Ok(config) => assert_eq!(config.api_token.expose(), secret),
        Err(error) => {
            let message = error.to_string();
            assert!(!message.contains(secret), "the secret is in the error: {message}");
            panic!("a valid secret was refused: {message}");
        }
    }
}
