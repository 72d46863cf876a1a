//! The parameters of a LicenseSpring call, from the query string (`check_license`) or the JSON
//! body (`activate_license`, `deactivate_license`): which license (`license_key`, or `username`
//! for user-based products), which device (`hardware_id`), which product (its short code), and
//! the optional client facts recorded on an activation. Unknown parameters are ignored, as
//! clients send more than these (`bundle_code`, `variables`, …).

use license_shared::ApiError;
use serde_json::{Map, Value};

use super::errors::{MISSING_PARAMETERS, VALIDATION_ERROR, bad_request};

/// Longest accepted value of any text parameter.
const MAX_TEXT: usize = 256;

/// Text facts about the client, recorded on its activation.
const TEXT_FACTS: &[&str] = &[
    "os_ver",
    "hostname",
    "os_hostname",
    "ip",
    "ip_local",
    "app_ver",
    "sdk_ver",
    "mac_address",
    "vm_info",
    "env",
];

/// A checked request.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    pub product: String,
    pub hardware_id: String,
    pub license_key: Option<String>,
    pub username: Option<String>,
    /// LicenseSpring's numeric license id (our license `number`), to pick one of a user's.
    pub license_id: Option<i64>,
    /// `env`, echoed back as `environment`.
    pub env: Option<String>,
    /// The client facts given (`os_ver`, `hostname`, `is_vm`, …), as a JSON object.
    pub facts: Map<String, Value>,
}

impl Params {
    /// From a query string's pairs (every value a string).
    pub fn from_query(pairs: Vec<(String, String)>) -> Result<Self, ApiError> {
        let object = pairs
            .into_iter()
            .map(|(name, value)| (name, Value::String(value)))
            .collect();
        Self::from_object(object)
    }

    /// From a JSON request body.
    pub fn from_body(body: &[u8]) -> Result<Self, ApiError> {
        let value: Value = serde_json::from_slice(body).map_err(|error| {
            bad_request(
                super::errors::INVALID_JSON,
                format!("the request body is not valid JSON: {error}"),
            )
        })?;
        match value {
            Value::Object(object) => Self::from_object(object),
            _ => Err(bad_request(
                VALIDATION_ERROR,
                "the request body must be a JSON object",
            )),
        }
    }

    fn from_object(object: Map<String, Value>) -> Result<Self, ApiError> {
        let product = text(&object, "product")?;
        let hardware_id = text(&object, "hardware_id")?;
        let missing: Vec<&str> = [("hardware_id", &hardware_id), ("product", &product)]
            .into_iter()
            .filter(|(_, value)| value.is_none())
            .map(|(name, _)| name)
            .collect();
        if !missing.is_empty() {
            return Err(missing_parameters(&missing));
        }
        let mut facts = Map::new();
        for name in TEXT_FACTS {
            if let Some(value) = text(&object, name)? {
                facts.insert((*name).to_owned(), Value::String(value));
            }
        }
        if let Some(is_vm) = boolean(&object, "is_vm")? {
            facts.insert("is_vm".to_owned(), Value::Bool(is_vm));
        }
        Ok(Params {
            product: product.unwrap_or_default(),
            hardware_id: hardware_id.unwrap_or_default(),
            license_key: text(&object, "license_key")?,
            username: text(&object, "username")?,
            license_id: integer(&object, "license_id")?,
            env: text(&object, "env")?,
            facts,
        })
    }
}

/// `missing_parameters`, naming them.
pub fn missing_parameters(names: &[&str]) -> ApiError {
    bad_request(
        MISSING_PARAMETERS,
        format!(
            "some parameters are missing in the request: {}",
            names.join(", ")
        ),
    )
}

/// A text parameter: absent, null and empty all count as not given.
fn text(object: &Map<String, Value>, name: &str) -> Result<Option<String>, ApiError> {
    match object.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(value)) if value.trim().is_empty() => Ok(None),
        Some(Value::String(value)) if value.chars().count() > MAX_TEXT => Err(bad_request(
            VALIDATION_ERROR,
            format!("{name} is longer than {MAX_TEXT} characters"),
        )),
        Some(Value::String(value)) => Ok(Some(value.clone())),
        Some(_) => Err(bad_request(
            VALIDATION_ERROR,
            format!("{name} must be a string"),
        )),
    }
}

fn boolean(object: &Map<String, Value>, name: &str) -> Result<Option<bool>, ApiError> {
    match object.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(value)) => Ok(Some(*value)),
        Some(Value::String(value)) if value.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(Value::String(value)) if value.eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(_) => Err(bad_request(
            VALIDATION_ERROR,
            format!("{name} must be a boolean"),
        )),
    }
}

fn integer(object: &Map<String, Value>, name: &str) -> Result<Option<i64>, ApiError> {
    let invalid = || bad_request(VALIDATION_ERROR, format!("{name} must be an integer"));
    match object.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(value)) => value.as_i64().map(Some).ok_or_else(invalid),
        Some(Value::String(value)) if value.is_empty() => Ok(None),
        Some(Value::String(value)) => value.parse().map(Some).map_err(|_| invalid()),
        Some(_) => Err(invalid()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn code(result: Result<Params, ApiError>) -> String {
        result
            .err()
            .map(|error| error.code.into_owned())
            .unwrap_or_default()
    }

    #[test]
    fn the_sdk_activation_body_parses_with_its_facts() {
        let body = json!({
            "product": "desk", "hardware_id": "hw-1", "license_key": "K",
            "os_ver": "Linux-6", "hostname": "box", "ip": "10.0.0.1",
            "mac_address": "AA:BB", "is_vm": false, "vm_info": null,
            "sdk_ver": "PythonSDK 4.0.0", "variables": {"x": 1}
        });
        let params = Params::from_body(body.to_string().as_bytes()).expect("parses");
        assert_eq!(params.product, "desk");
        assert_eq!(params.license_key.as_deref(), Some("K"));
        assert_eq!(params.facts["hostname"], "box");
        assert_eq!(params.facts["is_vm"], false);
        assert!(!params.facts.contains_key("vm_info"));
    }

    #[test]
    fn bad_parameters_are_named() {
        let missing = Params::from_query(vec![("product".into(), "desk".into())]);
        assert_eq!(code(missing.clone()), MISSING_PARAMETERS);
        assert!(
            missing
                .err()
                .is_some_and(|e| e.message.contains("hardware_id"))
        );
        assert_eq!(
            code(Params::from_body(b"{nope")),
            super::super::errors::INVALID_JSON
        );
        assert_eq!(code(Params::from_body(b"[1]")), VALIDATION_ERROR);
        let wrong_type = json!({"product": 5, "hardware_id": "x"}).to_string();
        assert_eq!(
            code(Params::from_body(wrong_type.as_bytes())),
            VALIDATION_ERROR
        );
        let long = json!({"product": "p", "hardware_id": "x".repeat(300)}).to_string();
        assert_eq!(code(Params::from_body(long.as_bytes())), VALIDATION_ERROR);
        let bad_id = vec![
            ("product".into(), "p".into()),
            ("hardware_id".into(), "h".into()),
            ("license_id".into(), "seven".into()),
        ];
        assert_eq!(code(Params::from_query(bad_id)), VALIDATION_ERROR);
    }
}
