//! The operator CLI shipped in production images offers no demo or simulator (they live in
//! `infra-tickets-demo`).

#[test]
fn the_operator_cli_help_lists_no_demo_or_simulators_command() {
    let output =
        std::process::Command::new(env!("CARGO_BIN_EXE_infra-tickets")).arg("--help").output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap().to_lowercase();
    assert!(help.contains("replay") && help.contains("dlq"), "{help}");
    assert!(!help.contains("demo") && !help.contains("simulator"), "{help}");
}
