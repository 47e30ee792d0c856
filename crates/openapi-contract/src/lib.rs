//! What the simulators' contract checks share: reading a contract description (our own record of
//! the operations, parameters and schemas we use, in OpenAPI 3.0 layout, kept in the repository and
//! compared with the official spec by `scripts/contract`) or an official OpenAPI 3.0 spec, walking its
//! operations, following local `$ref`s, finding the operation that serves a request path, and
//! validating JSON against a schema with `$ref`s resolved into `#/components` (JSON Schema draft 4,
//! the dialect OpenAPI 3.0 builds on), compiled validators cached per schema.
//!
//! What is particular to one API stays with its simulator: which methods and media type it serves,
//! how its spec departs from plain JSON Schema (Snyk's `nullable`), whether formats are asserted
//! (JIRA writes times that are not RFC 3339), and what a call record looks like.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

/// How often a `$ref` may lead to another `$ref` before resolution stops where it is.
const MAX_REF_HOPS: usize = 8;

/// Which contract a simulator checks against, and how errors name it.
#[derive(Debug, Clone, Copy)]
pub struct SpecFile {
    /// How errors name the contract ("Snyk contract description").
    pub title: &'static str,
    /// The environment variable that points at another document to check against instead, such
    /// as the vendor's official spec (a maintainer's run; the tests need none).
    pub env_var: &'static str,
    /// Where the contract description lives in the repository, for messages.
    pub embedded_path: &'static str,
    /// The contract description itself, compiled in (`include_str!`), so that the checks read
    /// nothing from outside the repository or the build.
    pub embedded: &'static str,
}

/// Why the spec could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("cannot read the {title} {path} (named by {env_var}): {source}")]
    Read { title: &'static str, path: String, env_var: &'static str, source: std::io::Error },
    #[error("the {title} {path} is not JSON: {source}")]
    Parse { title: &'static str, path: String, source: serde_json::Error },
}

impl SpecFile {
    /// The document the checks use: the file the environment variable names, else the contract
    /// description compiled in.
    pub fn load_default(&self) -> Result<Value, SpecError> {
        match std::env::var_os(self.env_var) {
            Some(path) => self.read(Path::new(&path)),
            None => self.parse(self.embedded, self.embedded_path),
        }
    }

    /// The document at `path`.
    pub fn read(&self, path: &Path) -> Result<Value, SpecError> {
        let text = std::fs::read_to_string(path).map_err(|source| SpecError::Read {
            title: self.title,
            path: path.display().to_string(),
            env_var: self.env_var,
            source,
        })?;
        self.parse(&text, &path.display().to_string())
    }

    fn parse(&self, text: &str, path: &str) -> Result<Value, SpecError> {
        serde_json::from_str(text).map_err(|source| SpecError::Parse {
            title: self.title,
            path: path.to_owned(),
            source,
        })
    }
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

/// One operation object under `paths`, with the template and method that serve it.
#[derive(Debug, Clone, Copy)]
pub struct OperationEntry<'a> {
    pub template: &'a str,
    pub method: &'a str,
    pub object: &'a Value,
}

impl OperationEntry<'_> {
    /// The `operationId`, or empty.
    pub fn id(&self) -> String {
        self.object.get("operationId").and_then(Value::as_str).unwrap_or_default().to_owned()
    }

    pub fn path(&self) -> PathTemplate {
        PathTemplate::parse(self.template)
    }
}

/// The operations of `doc` whose method (lower case, as the spec writes it) is one of `methods`,
/// in the spec's order.
pub fn operations<'a>(doc: &'a Value, methods: &'a [&str]) -> impl Iterator<Item = OperationEntry<'a>> {
    doc.get("paths").and_then(Value::as_object).into_iter().flatten().flat_map(move |(template, item)| {
        item.as_object()
            .into_iter()
            .flatten()
            .filter(|(method, _)| methods.contains(&method.as_str()))
            .map(move |(method, object)| OperationEntry { template, method, object })
    })
}

/// `value`, or what its local `$ref` (`#/…`) points to in `root`, followed a few times.
pub fn resolve<'a>(root: &'a Value, value: &'a Value) -> &'a Value {
    let mut current = value;
    for _ in 0..MAX_REF_HOPS {
        let Some(reference) = current.get("$ref").and_then(Value::as_str) else { break };
        match root.pointer(reference.trim_start_matches('#')) {
            Some(target) => current = target,
            None => break,
        }
    }
    current
}

/// The body schema of each status an operation documents, for one media type (`None`: the
/// status is documented without a body of that type).
#[derive(Debug, Clone, Default)]
pub struct Responses(HashMap<String, Option<Value>>);

impl Responses {
    /// The responses of `operation`, `$ref`s to shared responses resolved in `doc`.
    pub fn of(doc: &Value, operation: &Value, media_type: &str) -> Responses {
        let pointer = format!("/content/{}/schema", media_type.replace('~', "~0").replace('/', "~1"));
        let schemas = operation
            .get("responses")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(status, response)| (status.clone(), resolve(doc, response).pointer(&pointer).cloned()))
            .collect();
        Responses(schemas)
    }

    /// What the operation documents for `status` (else its `default`); `None` if neither.
    pub fn documented(&self, status: u16) -> Option<Option<&Value>> {
        self.0.get(&status.to_string()).or_else(|| self.0.get("default")).map(Option::as_ref)
    }
}

/// A path template (`/rest/api/3/issue/{issueIdOrKey}`): literal segments and parameters.
#[derive(Debug, Clone)]
pub struct PathTemplate {
    /// `None` for a `{parameter}`.
    segments: Vec<Option<String>>,
}

impl PathTemplate {
    pub fn parse(template: &str) -> PathTemplate {
        let segments = template
            .trim_matches('/')
            .split('/')
            .map(|s| (!s.starts_with('{')).then(|| s.to_owned()))
            .collect();
        PathTemplate { segments }
    }

    fn fits(&self, path: &[&str]) -> bool {
        self.segments.len() == path.len()
            && self.segments.iter().zip(path).all(|(t, s)| t.as_deref().is_none_or(|t| t == *s))
    }

    fn literal_segments(&self) -> usize {
        self.segments.iter().filter(|s| s.is_some()).count()
    }
}

/// The path of a request URL without its query string.
pub fn without_query(path: &str) -> &str {
    path.split('?').next().unwrap_or(path)
}

/// The candidate whose template fits `path` (no query string); literal segments win over
/// parameters.
pub fn serving<'a, T>(
    candidates: impl IntoIterator<Item = &'a T>,
    template: impl Fn(&T) -> &PathTemplate,
    path: &str,
) -> Option<&'a T> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    candidates
        .into_iter()
        .filter(|candidate| template(candidate).fits(&segments))
        .max_by_key(|candidate| template(candidate).literal_segments())
}

/// Where in the instance a schema is broken, and how.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaProblem {
    /// A JSON pointer into the instance.
    pub at: String,
    pub message: String,
}

/// The spec's `components`, with a validator compiled on demand for each schema checked.
pub struct Schemas {
    /// `{"components": …}`: what `#/components/…` references point into.
    root: Value,
    validate_formats: bool,
    validators: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
}

impl Schemas {
    pub fn new(components: Value, validate_formats: bool) -> Schemas {
        Schemas { root: json!({ "components": components }), validate_formats, validators: Mutex::default() }
    }

    /// `schema`, or what its `$ref` into `#/components` points to.
    pub fn resolve<'a>(&'a self, schema: &'a Value) -> &'a Value {
        resolve(&self.root, schema)
    }

    fn validator(&self, schema: &Value) -> Result<Arc<jsonschema::Validator>, String> {
        let cache_key = schema.to_string();
        if let Some(v) = self.validators.lock().expect("validators lock").get(&cache_key) {
            return Ok(v.clone());
        }
        let document = json!({ "allOf": [schema], "components": self.root["components"] });
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft4)
            .should_validate_formats(self.validate_formats)
            .build(&document)
            .map_err(|e| format!("schema does not compile: {e}"))?;
        let validator = Arc::new(validator);
        self.validators.lock().expect("validators lock").insert(cache_key, validator.clone());
        Ok(validator)
    }

    /// The first `limit` ways `instance` breaks `schema`; an error if the schema does not compile.
    pub fn problems(
        &self,
        schema: &Value,
        instance: &Value,
        limit: usize,
    ) -> Result<Vec<SchemaProblem>, String> {
        let validator = self.validator(schema)?;
        Ok(validator
            .iter_errors(instance)
            .take(limit)
            .map(|e| SchemaProblem { at: e.instance_path.to_string(), message: e.to_string() })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> Value {
        json!({
            "paths": {
                "/items/{id}": {
                    "get": {"operationId": "getItem", "responses": {
                        "200": {"$ref": "#/components/responses/Item"},
                        "default": {"description": "error"}
                    }},
                    "parameters": []
                },
                "/items/mine": {"get": {"operationId": "getMine"}, "post": {"operationId": "postMine"}}
            },
            "components": {
                "responses": {"Item": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Item"}}}}},
                "schemas": {
                    "Item": {"$ref": "#/components/schemas/Thing"},
                    "Thing": {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}}
                }
            }
        })
    }

    #[test]
    fn walks_the_operations_of_the_asked_methods_only() {
        let doc = doc();
        let found: Vec<(String, &str)> =
            operations(&doc, &["get"]).map(|entry| (entry.id(), entry.template)).collect();
        assert_eq!(found, [("getMine".to_owned(), "/items/mine"), ("getItem".to_owned(), "/items/{id}")]);
    }

    #[test]
    fn literal_segments_win_over_parameters_and_the_query_is_ignored() {
        let templates = [PathTemplate::parse("/items/{id}"), PathTemplate::parse("/items/mine")];
        let serving_path =
            |path| serving(&templates, |t| t, without_query(path)).map(|t| t.literal_segments());
        assert_eq!(serving_path("/items/mine?x=1"), Some(2));
        assert_eq!(serving_path("/items/42"), Some(1));
        assert_eq!(serving_path("/items/42/more"), None);
    }

    #[test]
    fn responses_follow_refs_and_fall_back_to_default() {
        let doc = doc();
        let responses = Responses::of(&doc, &doc["paths"]["/items/{id}"]["get"], "application/json");
        assert_eq!(responses.documented(200), Some(Some(&json!({"$ref": "#/components/schemas/Item"}))));
        assert_eq!(responses.documented(500), Some(None));
        let undocumented = Responses::of(&doc, &doc["paths"]["/items/mine"]["get"], "application/json");
        assert_eq!(undocumented.documented(200), None);
    }

    #[test]
    fn schemas_resolve_chains_of_refs_and_report_where_an_instance_breaks() {
        let schemas = Schemas::new(doc()["components"].clone(), true);
        let item = json!({"$ref": "#/components/schemas/Item"});
        assert_eq!(schemas.resolve(&item)["required"], json!(["id"]));
        assert_eq!(schemas.problems(&item, &json!({"id": "a"}), 5), Ok(vec![]));
        let problems = schemas.problems(&item, &json!({"id": 1}), 5).unwrap();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].at, "/id");
        assert!(problems[0].message.contains("not of type"), "{problems:?}");
        assert!(schemas.problems(&json!({"$ref": "#/components/schemas/Missing"}), &json!({}), 5).is_err());
    }

    const TEST_FILE: SpecFile = SpecFile {
        title: "test contract",
        env_var: "OPENAPI_CONTRACT_TEST_NO_SUCH_VAR",
        embedded_path: "contract/test.json",
        embedded: r#"{"paths": {}, "components": {}}"#,
    };

    #[test]
    fn the_compiled_in_contract_is_the_default() {
        assert_eq!(TEST_FILE.load_default().unwrap(), json!({"paths": {}, "components": {}}));
    }

    #[test]
    fn an_unreadable_or_broken_document_is_named() {
        let error = TEST_FILE.read(Path::new("/nonexistent/spec.json")).unwrap_err().to_string();
        assert!(
            error.starts_with(
                "cannot read the test contract /nonexistent/spec.json (named by OPENAPI_CONTRACT_TEST_NO_SUCH_VAR): "
            ),
            "{error}"
        );
        let broken = SpecFile { embedded: "{", ..TEST_FILE };
        let error = broken.load_default().unwrap_err().to_string();
        assert!(error.starts_with("the test contract contract/test.json is not JSON"), "{error}");
    }
}
