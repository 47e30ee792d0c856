//! How a service reaches NATS, as a clap argument group (flags and environment variables).
//!
//! One way to authenticate at most (user and password, token, NKey seed file or credentials
//! file: clap refuses two at parse time, naming both flags), and TLS with a CA, a client
//! certificate and its key. Passwords and tokens are [`Secret`]s: never in `Debug`, `--help`
//! (`hide_env_values`) or logs. In production each service has its own NATS user whose
//! permissions cover only its subjects (deploy/nats/auth.conf).

use std::path::PathBuf;

use clap::Args;

use crate::Secret;

/// How to reach NATS.
#[derive(Debug, Clone, Args)]
pub struct NatsArgs {
    /// NATS server URL(s), comma-separated for a cluster.
    #[arg(long = "nats-url", env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,
    /// NATS credentials file (JWT and NKey seed, operator mode).
    #[arg(long = "nats-credentials", env = "NATS_CREDENTIALS", hide_env_values = true,
          conflicts_with_all = ["nats_user", "nats_token", "nats_nkey_seed"])]
    pub nats_credentials: Option<PathBuf>,
    /// NATS user (with --nats-password): this service's own user, whose permissions cover only
    /// its subjects.
    #[arg(long = "nats-user", env = "NATS_USER", requires = "nats_password",
          conflicts_with_all = ["nats_token", "nats_nkey_seed"])]
    pub nats_user: Option<String>,
    /// Password of --nats-user.
    #[arg(long = "nats-password", env = "NATS_PASSWORD", hide_env_values = true, requires = "nats_user")]
    pub nats_password: Option<Secret>,
    /// NATS authentication token.
    #[arg(
        long = "nats-token",
        env = "NATS_TOKEN",
        hide_env_values = true,
        conflicts_with = "nats_nkey_seed"
    )]
    pub nats_token: Option<Secret>,
    /// File holding this service's NKey seed (the server knows its public key).
    #[arg(long = "nats-nkey-seed", env = "NATS_NKEY_SEED", hide_env_values = true)]
    pub nats_nkey_seed: Option<PathBuf>,
    /// PEM file of the CA that signed the NATS server's certificate; implies TLS.
    #[arg(long = "nats-tls-ca", env = "NATS_TLS_CA")]
    pub nats_tls_ca: Option<PathBuf>,
    /// PEM client certificate, for a server that verifies clients (with --nats-tls-key).
    #[arg(long = "nats-tls-cert", env = "NATS_TLS_CERT", requires = "nats_tls_key")]
    pub nats_tls_cert: Option<PathBuf>,
    /// PEM private key of --nats-tls-cert.
    #[arg(long = "nats-tls-key", env = "NATS_TLS_KEY", hide_env_values = true, requires = "nats_tls_cert")]
    pub nats_tls_key: Option<PathBuf>,
    /// Refuse a NATS server that does not offer TLS (implied by the TLS files).
    #[arg(long = "nats-tls-required", env = "NATS_TLS_REQUIRED", default_value_t = false,
          action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub nats_tls_required: bool,
}

impl NatsArgs {
    pub fn settings(&self, service: &str) -> bus::NatsConnection {
        let auth = if let Some(path) = &self.nats_credentials {
            bus::NatsAuth::CredentialsFile(path.clone())
        } else if let (Some(user), Some(password)) = (&self.nats_user, &self.nats_password) {
            bus::NatsAuth::UserPassword { user: user.clone(), password: password.expose().to_owned() }
        } else if let Some(token) = &self.nats_token {
            bus::NatsAuth::Token(token.expose().to_owned())
        } else if let Some(path) = &self.nats_nkey_seed {
            bus::NatsAuth::NKeySeedFile(path.clone())
        } else {
            bus::NatsAuth::None
        };
        bus::NatsConnection {
            url: self.nats_url.clone(),
            name: service.to_owned(),
            auth,
            tls: bus::NatsTls {
                ca_file: self.nats_tls_ca.clone(),
                client_cert: self.nats_tls_cert.clone(),
                client_key: self.nats_tls_key.clone(),
                required: self.nats_tls_required,
            },
        }
    }
}

/// `apply` or `verify` (`--topology-mode`, `ITK_TOPOLOGY_MODE`).
pub fn parse_topology_mode(text: &str) -> Result<bus::TopologyMode, String> {
    match text {
        "apply" => Ok(bus::TopologyMode::Apply),
        "verify" => Ok(bus::TopologyMode::Verify),
        other => Err(format!("{other:?} is neither `apply` (create or update) nor `verify` (only check)")),
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    #[derive(Debug, Parser)]
    struct Service {
        #[command(flatten)]
        nats: NatsArgs,
    }

    fn parse(args: &[&str]) -> Result<Service, clap::Error> {
        Service::try_parse_from(std::iter::once("service").chain(args.iter().copied()))
    }

    #[test]
    fn user_and_password_become_the_connection_auth() {
        let service = parse(&["--nats-user", "notifier", "--nats-password", "hunter2"]).unwrap();
        let connection = service.nats.settings("notifier");
        assert!(matches!(
            &connection.auth,
            bus::NatsAuth::UserPassword { user, password } if user == "notifier" && password == "hunter2"
        ));
        let printed = format!("{service:?} {connection:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
    }

    #[test]
    fn two_ways_to_authenticate_are_refused_at_start() {
        let error = parse(&["--nats-user", "u", "--nats-password", "p", "--nats-token", "t"]).unwrap_err();
        let text = error.to_string();
        assert!(text.contains("--nats-token") && text.contains("--nats-user"), "{text}");
        let error = parse(&["--nats-credentials", "a.creds", "--nats-nkey-seed", "seed"]).unwrap_err();
        assert!(error.to_string().contains("--nats-nkey-seed"), "{error}");
    }

    #[test]
    fn half_a_pair_is_refused_at_start() {
        let error = parse(&["--nats-user", "u"]).unwrap_err();
        assert!(error.to_string().contains("--nats-password"), "{error}");
        let error = parse(&["--nats-tls-cert", "c.pem"]).unwrap_err();
        assert!(error.to_string().contains("--nats-tls-key"), "{error}");
    }

    #[test]
    fn tls_files_imply_tls() {
        let service = parse(&["--nats-tls-ca", "ca.pem"]).unwrap();
        let tls = service.nats.settings("triage").tls;
        assert_eq!(tls.ca_file, Some(PathBuf::from("ca.pem")));
    }

    #[test]
    fn help_never_shows_a_secret_from_the_environment() {
        // Checked on the definition: setting the variables here would leak into the other tests.
        let command = Service::command();
        for secret in ["nats_password", "nats_token", "nats_credentials", "nats_nkey_seed", "nats_tls_key"] {
            let arg = command.get_arguments().find(|a| a.get_id() == secret).unwrap();
            assert!(arg.is_hide_env_values_set(), "{secret} would print its environment value in --help");
        }
    }
}
