//! The contract check: requests and responses against the official Snyk REST OpenAPI spec
//! (`shared/specs/snyk-rest.openapi.json`).
//!
//! * A request's query parameters must be ones its operation declares, required ones present,
//!   and each value valid for its schema (arrays declared `style: form, explode: false` are
//!   comma-separated; `version` matches the spec's pattern; `limit` 10–100 in tens; UUIDs).
//! * A response body must validate against the schema of its status (`$ref`s resolved into
//!   `#/components`). OpenAPI 3.0's `nullable: true` is rewritten to a JSON Schema type union
//!   first; the rest is JSON Schema draft 4, the dialect OpenAPI 3.0 builds on.
//!
//! Injected faults ([`crate::Fault`]) are skipped: they stand for Snyk's gateway, not for the
//! operation.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::RequestRecord;

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("cannot read the Snyk OpenAPI spec {path}: {source} (set SNYK_OPENAPI_SPEC to its path)")]
    Read { path: String, source: std::io::Error },
    #[error("the Snyk OpenAPI spec {path} is not JSON: {source}")]
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

#[derive(Debug, Clone)]
struct Parameter {
    name: String,
    location: String,
    required: bool,
    /// `style: form, explode: false`: one comma-separated value.
    comma_separated: bool,
    schema: Value,
}

#[derive(Debug, Clone)]
struct Operation {
    id: String,
    segments: Vec<Option<String>>,
    parameters: Vec<Parameter>,
    responses: HashMap<String, Option<Value>>,
}

/// The loaded spec with validators compiled on demand.
pub struct Spec {
    components: Value,
    operations: Vec<Operation>,
    validators: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
}

/// `SNYK_OPENAPI_SPEC`, else `shared/specs/` beside the repository.
pub fn default_spec_path() -> PathBuf {
    if let Some(path) = std::env::var_os("SNYK_OPENAPI_SPEC") {
        return PathBuf::from(path);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/specs/snyk-rest.openapi.json")
}

/// OpenAPI 3.0 `nullable: true` → JSON Schema `type: [T, "null"]` (and `null` in an enum).
fn rewrite_nullable(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map.get("nullable") == Some(&Value::Bool(true)) {
                if let Some(Value::String(t)) = map.get("type").cloned() {
                    map.insert("type".into(), json!([t, "null"]));
                }
                if let Some(Value::Array(values)) = map.get_mut("enum")
                    && !values.contains(&Value::Null)
                {
                    values.push(Value::Null);
                }
            }
            for child in map.values_mut() {
                rewrite_nullable(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(rewrite_nullable),
        _ => {}
    }
}

impl Spec {
    pub fn load_default() -> Result<Spec, SpecError> {
        Self::load(default_spec_path())
    }

    pub fn load(path: impl AsRef<Path>) -> Result<Spec, SpecError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|source| SpecError::Read { path: path.display().to_string(), source })?;
        let mut doc: Value = serde_json::from_str(&text)
            .map_err(|source| SpecError::Parse { path: path.display().to_string(), source })?;
        rewrite_nullable(&mut doc);
        let components = doc.get("components").cloned().unwrap_or(json!({}));
        let resolve = |value: &Value| -> Value {
            let mut current = value.clone();
            for _ in 0..8 {
                let Some(reference) = current.get("$ref").and_then(Value::as_str) else { break };
                let pointer = reference.trim_start_matches('#');
                match doc.pointer(pointer) {
                    Some(target) => current = target.clone(),
                    None => break,
                }
            }
            current
        };
        let mut operations = Vec::new();
        for (template, item) in doc.get("paths").and_then(Value::as_object).into_iter().flatten() {
            let Some(op) = item.get("get") else { continue };
            let parameters = op
                .get("parameters")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|p| {
                    let p = resolve(p);
                    let explode = p.get("explode").and_then(Value::as_bool).unwrap_or(true);
                    Parameter {
                        name: p.get("name").and_then(Value::as_str).unwrap_or_default().to_owned(),
                        location: p.get("in").and_then(Value::as_str).unwrap_or_default().to_owned(),
                        required: p.get("required").and_then(Value::as_bool).unwrap_or(false),
                        comma_separated: !explode,
                        schema: p.get("schema").cloned().unwrap_or(json!({})),
                    }
                })
                .collect();
            let responses = op
                .get("responses")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .map(|(status, response)| {
                    let response = resolve(response);
                    (status.clone(), response.pointer("/content/application~1vnd.api+json/schema").cloned())
                })
                .collect();
            operations.push(Operation {
                id: op.get("operationId").and_then(Value::as_str).unwrap_or_default().to_owned(),
                segments: template
                    .trim_matches('/')
                    .split('/')
                    .map(|s| (!s.starts_with('{')).then(|| s.to_owned()))
                    .collect(),
                parameters,
                responses,
            });
        }
        Ok(Spec { components, operations, validators: Mutex::new(HashMap::new()) })
    }

    /// The GET operation serving a path (with or without the `/rest` prefix).
    fn operation(&self, path: &str) -> Option<&Operation> {
        let path = path.split('?').next().unwrap_or(path);
        let path = path.strip_prefix("/rest").unwrap_or(path);
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        self.operations
            .iter()
            .filter(|op| op.segments.len() == segments.len())
            .filter(|op| op.segments.iter().zip(&segments).all(|(t, s)| t.as_deref().is_none_or(|t| t == *s)))
            .max_by_key(|op| op.segments.iter().filter(|s| s.is_some()).count())
    }

    fn validator(&self, schema: &Value) -> Result<Arc<jsonschema::Validator>, String> {
        let key = schema.to_string();
        if let Some(v) = self.validators.lock().expect("validators lock").get(&key) {
            return Ok(v.clone());
        }
        let document = json!({"allOf": [schema], "components": self.components});
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft4)
            .should_validate_formats(true)
            .build(&document)
            .map_err(|e| format!("schema does not compile: {e}"))?;
        let validator = Arc::new(validator);
        self.validators.lock().expect("validators lock").insert(key, validator.clone());
        Ok(validator)
    }

    fn problems(&self, schema: &Value, instance: &Value) -> Vec<String> {
        match self.validator(schema) {
            Ok(validator) => validator
                .iter_errors(instance)
                .take(8)
                .map(|e| format!("at {:?}: {e}", e.instance_path.to_string()))
                .collect(),
            Err(problem) => vec![problem],
        }
    }

    /// A parameter's text as the JSON value its schema types it as.
    fn typed(&self, schema: &Value, text: &str) -> Value {
        let schema = self.resolve_schema(schema);
        match schema.get("type").and_then(Value::as_str) {
            Some("integer") => text.parse::<i64>().map(Value::from).unwrap_or_else(|_| json!(text)),
            Some("number") => text.parse::<f64>().map(Value::from).unwrap_or_else(|_| json!(text)),
            Some("boolean") => match text {
                "true" => json!(true),
                "false" => json!(false),
                other => json!(other),
            },
            _ => json!(text),
        }
    }

    fn resolve_schema(&self, schema: &Value) -> Value {
        let mut current = schema.clone();
        for _ in 0..8 {
            let Some(reference) = current.get("$ref").and_then(Value::as_str) else { break };
            let Some(pointer) = reference.strip_prefix("#/components") else { break };
            match self.components.pointer(pointer) {
                Some(target) => current = target.clone(),
                None => break,
            }
        }
        current
    }

    /// Problems with a request's query parameters.
    pub fn check_request(&self, path: &str, params: &[(String, String)]) -> Vec<String> {
        let Some(operation) = self.operation(path) else {
            return vec![format!("no GET operation in the spec serves {path}")];
        };
        let mut problems = Vec::new();
        let query: Vec<&Parameter> = operation.parameters.iter().filter(|p| p.location == "query").collect();
        for parameter in &query {
            let values: Vec<&str> =
                params.iter().filter(|(k, _)| k == &parameter.name).map(|(_, v)| v.as_str()).collect();
            if values.is_empty() {
                if parameter.required {
                    problems
                        .push(format!("{}: required parameter {} is missing", operation.id, parameter.name));
                }
                continue;
            }
            let schema = self.resolve_schema(&parameter.schema);
            let instance = if schema.get("type").and_then(Value::as_str) == Some("array") {
                let items = schema.get("items").cloned().unwrap_or(json!({}));
                if parameter.comma_separated && values.len() > 1 {
                    problems.push(format!(
                        "{}: {} is declared explode: false and must be one comma-separated value, not repeated",
                        operation.id, parameter.name
                    ));
                }
                let texts: Vec<&str> = if parameter.comma_separated {
                    values.iter().flat_map(|v| v.split(',')).collect()
                } else {
                    values.clone()
                };
                Value::Array(texts.into_iter().map(|t| self.typed(&items, t)).collect())
            } else {
                if values.len() > 1 {
                    problems.push(format!(
                        "{}: {} is given {} times",
                        operation.id,
                        parameter.name,
                        values.len()
                    ));
                }
                self.typed(&schema, values[0])
            };
            for problem in self.problems(&parameter.schema, &instance) {
                problems
                    .push(format!("{}: parameter {}={instance}: {problem}", operation.id, parameter.name));
            }
        }
        for (name, _) in params {
            if !query.iter().any(|p| &p.name == name) {
                problems.push(format!("{}: unknown query parameter {name}", operation.id));
            }
        }
        problems
    }

    /// Problems with a response body for its status.
    pub fn check_response(&self, path: &str, status: u16, body: &Value) -> Vec<String> {
        let Some(operation) = self.operation(path) else {
            return vec![format!("no GET operation in the spec serves {path}")];
        };
        match operation.responses.get(&status.to_string()).or_else(|| operation.responses.get("default")) {
            None => vec![format!("{} does not document status {status}", operation.id)],
            Some(None) => Vec::new(),
            Some(Some(schema)) => self
                .problems(schema, body)
                .into_iter()
                .map(|p| format!("{status} response of {}: {p}", operation.id))
                .collect(),
        }
    }

    /// Every violation of one recorded call (injected faults are skipped).
    pub fn check_call(&self, call: &RequestRecord) -> Vec<Violation> {
        if call.faulted {
            return Vec::new();
        }
        let name = format!("{} {}?{} -> {}", call.method, call.path, call.query, call.status);
        let mut problems = self.check_request(&call.path, &call.params);
        match &call.response {
            Some(body) => problems.extend(self.check_response(&call.path, call.status, body)),
            None => problems.push("the response is not JSON".into()),
        }
        problems.into_iter().map(|problem| Violation { call: name.clone(), problem }).collect()
    }

    pub fn check_calls(&self, calls: &[RequestRecord]) -> Vec<Violation> {
        calls.iter().flat_map(|c| self.check_call(c)).collect()
    }
}

/// The query parameters of a URL (`/rest/orgs/x/issues?version=…`), decoded.
pub fn query_params(url: &str) -> Vec<(String, String)> {
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    url::form_urlencoded::parse(query.as_bytes()).into_owned().collect()
}
