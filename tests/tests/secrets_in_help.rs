//! No service's `--help` (nor docs/configuration.md, generated from it) prints a secret set in
//! the environment: every argument whose variable names a token, secret, password or key has
//! `hide_env_values`. Checked on the definitions, since setting the variables would leak into
//! the other tests of this process; scripts/config-reference checks the rendered text.

use clap::CommandFactory;

#[test]
fn no_service_prints_a_secret_from_the_environment_in_its_help() {
    let commands = [
        ingest_snyk::Config::command(),
        ingest_health::Config::command(),
        triage::Config::command(),
        jira_writer::Config::command(),
        notifier::Config::command(),
    ];
    let shown: Vec<String> = commands.iter().flat_map(service_kit::config::secrets_shown_in_help).collect();
    assert!(shown.is_empty(), "--help would print these environment values: {shown:#?}");
}
