//! The contract check: requests and responses against our contract description of the JIRA
//! Cloud platform REST v3 API (`contract/jira-cloud-platform-v3.json` in this crate: the operations
//! we use, their parameters and schemas, taken as facts from the official OpenAPI spec and compared
//! with it by `scripts/contract compare jira <official spec>`). `JIRA_OPENAPI_SPEC` names another
//! document to check against instead, such as the official spec itself.
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

use std::path::Path;

use openapi_contract::{PathTemplate, Responses, Schemas, SpecFile};
use serde_json::{Value, json};

pub use openapi_contract::{SpecError, Violation};

use crate::CallRecord;

const SPEC_FILE: SpecFile = SpecFile {
    title: "JIRA contract description",
    env_var: "JIRA_OPENAPI_SPEC",
    embedded_path: "simulators/jira/contract/jira-cloud-platform-v3.json",
    embedded: include_str!("../contract/jira-cloud-platform-v3.json"),
};

/// An operation of the spec.
#[derive(Debug, Clone)]
pub struct Operation {
    pub id: String,
    pub method: String,
    pub template: String,
    path: PathTemplate,
    request_schema: Option<Value>,
    responses: Responses,
    pub deprecated: bool,
}

/// The loaded spec, with compiled validators cached per schema.
pub struct Spec {
    schemas: Schemas,
    operations: Vec<Operation>,
}

impl Spec {
    /// Our contract description (or the document `JIRA_OPENAPI_SPEC` names).
    pub fn load_default() -> Result<Spec, SpecError> {
        Self::from_document(SPEC_FILE.load_default()?)
    }

    /// The OpenAPI document at `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<Spec, SpecError> {
        Self::from_document(SPEC_FILE.read(path.as_ref())?)
    }

    fn from_document(doc: Value) -> Result<Spec, SpecError> {
        let operations = openapi_contract::operations(&doc, &["get", "post", "put", "delete", "patch"])
            .map(|entry| Operation {
                id: entry.id(),
                method: entry.method.to_uppercase(),
                template: entry.template.to_owned(),
                path: entry.path(),
                request_schema: entry
                    .object
                    .pointer("/requestBody/content/application~1json/schema")
                    .cloned(),
                responses: Responses::of(&doc, entry.object, "application/json"),
                deprecated: entry.object.get("deprecated").and_then(Value::as_bool).unwrap_or(false),
            })
            .collect();
        let components = doc.get("components").cloned().unwrap_or(json!({}));
        // JIRA writes times as `2026-11-27T09:00:00.000+0000`, not RFC 3339: formats are not asserted.
        Ok(Spec { schemas: Schemas::new(components, false), operations })
    }

    /// The operation serving `method path`; literal segments win over parameters.
    pub fn operation(&self, method: &str, path: &str) -> Option<&Operation> {
        let candidates = self.operations.iter().filter(|op| op.method.eq_ignore_ascii_case(method));
        openapi_contract::serving(candidates, |op| &op.path, openapi_contract::without_query(path))
    }

    fn check(&self, schema: &Value, instance: &Value, what: &str) -> Result<(), String> {
        let problems: Vec<String> = self
            .schemas
            .problems(schema, instance, 5)?
            .into_iter()
            .map(|problem| format!("at {}: {}", problem.at, problem.message))
            .collect();
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
        let Some(schema) = operation.responses.documented(status) else {
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
