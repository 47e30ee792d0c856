//! The contract check: requests and responses against our contract description of the Snyk REST
//! API (`contract/snyk-rest.json` in this crate: the operations we use, their parameters and
//! schemas, taken as facts from the official OpenAPI spec and compared with it by
//! `scripts/contract compare snyk <official spec>`). `SNYK_OPENAPI_SPEC` names another document to
//! check against instead, such as the official spec itself.
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

use std::path::Path;

use openapi_contract::{PathTemplate, Responses, Schemas, SpecFile};
use serde_json::{Value, json};

pub use openapi_contract::{SpecError, Violation};

use crate::RequestRecord;

const SPEC_FILE: SpecFile = SpecFile {
    title: "Snyk contract description",
    env_var: "SNYK_OPENAPI_SPEC",
    embedded_path: "simulators/snyk/contract/snyk-rest.json",
    embedded: include_str!("../contract/snyk-rest.json"),
};

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
    path: PathTemplate,
    parameters: Vec<Parameter>,
    responses: Responses,
}

/// The loaded spec with validators compiled on demand.
pub struct Spec {
    schemas: Schemas,
    operations: Vec<Operation>,
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
    /// Our contract description (or the document `SNYK_OPENAPI_SPEC` names).
    pub fn load_default() -> Result<Spec, SpecError> {
        Self::from_document(SPEC_FILE.load_default()?)
    }

    /// The OpenAPI document at `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<Spec, SpecError> {
        Self::from_document(SPEC_FILE.read(path.as_ref())?)
    }

    fn from_document(mut doc: Value) -> Result<Spec, SpecError> {
        rewrite_nullable(&mut doc);
        let operations = openapi_contract::operations(&doc, &["get"])
            .map(|entry| Operation {
                id: entry.id(),
                path: entry.path(),
                parameters: entry
                    .object
                    .get("parameters")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(|p| {
                        let p = openapi_contract::resolve(&doc, p);
                        let explode = p.get("explode").and_then(Value::as_bool).unwrap_or(true);
                        Parameter {
                            name: p.get("name").and_then(Value::as_str).unwrap_or_default().to_owned(),
                            location: p.get("in").and_then(Value::as_str).unwrap_or_default().to_owned(),
                            required: p.get("required").and_then(Value::as_bool).unwrap_or(false),
                            comma_separated: !explode,
                            schema: p.get("schema").cloned().unwrap_or(json!({})),
                        }
                    })
                    .collect(),
                responses: Responses::of(&doc, entry.object, "application/vnd.api+json"),
            })
            .collect();
        let components = doc.get("components").cloned().unwrap_or(json!({}));
        Ok(Spec { schemas: Schemas::new(components, true), operations })
    }

    /// The GET operation serving a path (with or without the `/rest` prefix).
    fn operation(&self, path: &str) -> Option<&Operation> {
        let path = openapi_contract::without_query(path);
        let path = path.strip_prefix("/rest").unwrap_or(path);
        openapi_contract::serving(&self.operations, |op| &op.path, path)
    }

    fn problems(&self, schema: &Value, instance: &Value) -> Vec<String> {
        match self.schemas.problems(schema, instance, 8) {
            Ok(problems) => problems
                .into_iter()
                .map(|problem| format!("at {:?}: {}", problem.at, problem.message))
                .collect(),
            Err(problem) => vec![problem],
        }
    }

    /// A parameter's text as the JSON value its schema types it as.
    fn typed(&self, schema: &Value, text: &str) -> Value {
        let schema = self.schemas.resolve(schema);
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
            let schema = self.schemas.resolve(&parameter.schema);
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
                self.typed(schema, values[0])
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
        match operation.responses.documented(status) {
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
