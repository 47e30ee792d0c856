//! The contract check: requests and responses against the official JIRA Cloud platform REST v3
//! OpenAPI spec (`shared/specs/jira-cloud-platform-v3.openapi.json`).
//!
//! Each call is matched to its operation by method and path template; the request body is
//! validated against the operation's `requestBody` schema and the response body against the
//! schema of its status, with `$ref`s resolved into `#/components/schemas` (JSON Schema draft 4,
//! the dialect OpenAPI 3.0 is built on). A status the operation does not document is a
//! violation too. Formats (`date-time`, `uri`) are not asserted: JIRA itself writes times as
//! `2026-11-27T09:00:00.000+0000`, which is not RFC 3339.
//!
//! Injected faults (429/5xx/401/403 from [`crate::Fault`]) are skipped: they stand for JIRA's
//! gateway, not for the operation.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::CallRecord;

/// Why the spec could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("cannot read the OpenAPI spec {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("the OpenAPI spec {path} is not JSON: {source}")]
    Parse { path: String, source: serde_json::Error },
}

/// One way a call broke the contract.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    pub call: String,
    pub problem: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.call, self.problem)
    }
}

/// An operation of the spec.
#[derive(Debug, Clone)]
pub struct Operation {
    pub id: String,
    pub method: String,
    pub template: String,
    segments: Vec<Option<String>>,
    request_schema: Option<Value>,
    responses: HashMap<String, Option<Value>>,
    pub deprecated: bool,
}

/// The loaded spec, with compiled validators cached per schema.
pub struct Spec {
    components: Value,
    operations: Vec<Operation>,
    validators: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
}

/// Where the spec lives: `JIRA_OPENAPI_SPEC`, else `shared/specs/` beside the repository.
pub fn default_spec_path() -> PathBuf {
    if let Some(path) = std::env::var_os("JIRA_OPENAPI_SPEC") {
        return PathBuf::from(path);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/specs/jira-cloud-platform-v3.openapi.json")
}

impl Spec {
    /// Loads the spec from [`default_spec_path`].
    pub fn load_default() -> Result<Spec, SpecError> {
        Self::load(default_spec_path())
    }

    pub fn load(path: impl AsRef<Path>) -> Result<Spec, SpecError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|source| SpecError::Read { path: path.display().to_string(), source })?;
        let doc: Value = serde_json::from_str(&text)
            .map_err(|source| SpecError::Parse { path: path.display().to_string(), source })?;
        let mut operations = Vec::new();
        if let Some(paths) = doc.get("paths").and_then(Value::as_object) {
            for (template, item) in paths {
                let Some(item) = item.as_object() else { continue };
                for (method, op) in item {
                    if !["get", "post", "put", "delete", "patch"].contains(&method.as_str()) {
                        continue;
                    }
                    let request_schema = op.pointer("/requestBody/content/application~1json/schema").cloned();
                    let responses = op
                        .get("responses")
                        .and_then(Value::as_object)
                        .map(|r| {
                            r.iter()
                                .map(|(status, response)| {
                                    (
                                        status.clone(),
                                        response.pointer("/content/application~1json/schema").cloned(),
                                    )
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    operations.push(Operation {
                        id: op.get("operationId").and_then(Value::as_str).unwrap_or_default().to_owned(),
                        method: method.to_uppercase(),
                        template: template.clone(),
                        segments: template
                            .trim_matches('/')
                            .split('/')
                            .map(|s| (!s.starts_with('{')).then(|| s.to_owned()))
                            .collect(),
                        request_schema,
                        responses,
                        deprecated: op.get("deprecated").and_then(Value::as_bool).unwrap_or(false),
                    });
                }
            }
        }
        let components = doc.get("components").cloned().unwrap_or(json!({}));
        Ok(Spec { components, operations, validators: Mutex::new(HashMap::new()) })
    }

    /// The operation serving `method path`; literal segments win over parameters.
    pub fn operation(&self, method: &str, path: &str) -> Option<&Operation> {
        let segments: Vec<&str> =
            path.split('?').next().unwrap_or(path).trim_matches('/').split('/').collect();
        self.operations
            .iter()
            .filter(|op| op.method.eq_ignore_ascii_case(method) && op.segments.len() == segments.len())
            .filter(|op| op.segments.iter().zip(&segments).all(|(t, s)| t.as_deref().is_none_or(|t| t == *s)))
            .max_by_key(|op| op.segments.iter().filter(|s| s.is_some()).count())
    }

    fn validator(&self, schema: &Value) -> Result<Arc<jsonschema::Validator>, String> {
        let cache_key = schema.to_string();
        if let Some(v) = self.validators.lock().expect("validators lock").get(&cache_key) {
            return Ok(v.clone());
        }
        let document = json!({ "allOf": [schema], "components": self.components });
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft4)
            .should_validate_formats(false)
            .build(&document)
            .map_err(|e| format!("schema does not compile: {e}"))?;
        let validator = Arc::new(validator);
        self.validators.lock().expect("validators lock").insert(cache_key, validator.clone());
        Ok(validator)
    }

    fn check(&self, schema: &Value, instance: &Value, what: &str) -> Result<(), String> {
        let validator = self.validator(schema)?;
        let problems: Vec<String> =
            validator.iter_errors(instance).take(5).map(|e| format!("at {}: {e}", e.instance_path)).collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(format!("{what} breaks the schema: {}", problems.join("; ")))
        }
    }

    /// Checks a request body against its operation.
    pub fn check_request(&self, method: &str, path: &str, body: Option<&Value>) -> Result<(), String> {
        let operation = self
            .operation(method, path)
            .ok_or_else(|| format!("no operation in the spec serves {method} {path}"))?;
        match (&operation.request_schema, body) {
            (Some(schema), Some(body)) => self.check(schema, body, &format!("request of {}", operation.id)),
            _ => Ok(()),
        }
    }

    /// Checks a response status and body against its operation.
    pub fn check_response(
        &self,
        method: &str,
        path: &str,
        status: u16,
        body: Option<&Value>,
    ) -> Result<(), String> {
        let operation = self
            .operation(method, path)
            .ok_or_else(|| format!("no operation in the spec serves {method} {path}"))?;
        let documented =
            operation.responses.get(&status.to_string()).or_else(|| operation.responses.get("default"));
        let Some(schema) = documented else {
            if operation.deprecated && status == 410 {
                return Ok(());
            }
            return Err(format!("{} does not document status {status}", operation.id));
        };
        match (schema, body) {
            (Some(schema), Some(body)) => {
                self.check(schema, body, &format!("{status} response of {}", operation.id))
            }
            _ => Ok(()),
        }
    }

    /// Every violation of one recorded call (injected faults are skipped).
    pub fn check_call(&self, call: &CallRecord) -> Vec<Violation> {
        if call.faulted || call.path.starts_with("/_sim") {
            return Vec::new();
        }
        let name = format!("{} {} -> {}", call.method, call.path, call.status);
        let mut violations = Vec::new();
        if let Err(problem) = self.check_request(&call.method, &call.path, call.request_body.as_ref()) {
            violations.push(Violation { call: name.clone(), problem });
        }
        if let Err(problem) =
            self.check_response(&call.method, &call.path, call.status, call.response_body.as_ref())
        {
            violations.push(Violation { call: name, problem });
        }
        violations
    }

    /// Every violation of every call.
    pub fn check_calls(&self, calls: &[CallRecord]) -> Vec<Violation> {
        calls.iter().flat_map(|c| self.check_call(c)).collect()
    }
}
