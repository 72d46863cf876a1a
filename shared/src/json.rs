//! [`CompactJson`]: a free-form JSON value (license features and metadata) held as its compact
//! text. A data plane keeps a million licenses in memory: as a `serde_json::Map`, three
//! feature flags cost about 640 bytes (a B-tree node sized for eleven entries), as text about
//! 40. Serializing writes the text as it is (no parse, no copy into a tree), which is also the
//! cheapest way to put features into every verify answer; readers that need the structure
//! parse it on demand.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// A JSON value, stored as compact (or as received) JSON text. Always valid JSON.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CompactJson(Box<str>);

impl CompactJson {
    /// `{}`.
    pub fn empty_object() -> Self {
        CompactJson("{}".into())
    }

    /// JSON text as it is (e.g. PostgreSQL's `jsonb` output), checked without building a tree.
    pub fn from_text(text: String) -> Result<Self, serde_json::Error> {
        serde_json::from_str::<&RawValue>(&text)?;
        Ok(CompactJson(text.into_boxed_str()))
    }

    /// The value's JSON text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The value, parsed.
    pub fn to_value(&self) -> Value {
        serde_json::from_str(&self.0).unwrap_or(Value::Null)
    }

    /// The value's entries when it is an object; empty otherwise.
    pub fn to_map(&self) -> Map<String, Value> {
        match self.to_value() {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }
}

impl From<&Value> for CompactJson {
    fn from(value: &Value) -> Self {
        CompactJson(value.to_string().into_boxed_str())
    }
}

impl From<Value> for CompactJson {
    fn from(value: Value) -> Self {
        CompactJson::from(&value)
    }
}

impl From<Map<String, Value>> for CompactJson {
    fn from(map: Map<String, Value>) -> Self {
        CompactJson::from(Value::Object(map))
    }
}

impl From<&Map<String, Value>> for CompactJson {
    fn from(map: &Map<String, Value>) -> Self {
        // Serializing a map cannot fail: its keys are strings.
        CompactJson(
            serde_json::to_string(map)
                .unwrap_or_else(|_| "{}".to_owned())
                .into_boxed_str(),
        )
    }
}

impl fmt::Debug for CompactJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for CompactJson {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Borrowing parse: checks the text, copies nothing.
        let raw: &RawValue = serde_json::from_str(&self.0).map_err(serde::ser::Error::custom)?;
        raw.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for CompactJson {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Transcoded straight into compact text: works with any deserializer, including the
        // buffered one serde uses for internally tagged enums (the protocol's `Change`).
        let mut text = Vec::with_capacity(64);
        serde_transcode::transcode(deserializer, &mut serde_json::Serializer::new(&mut text))
            .map_err(serde::de::Error::custom)?;
        let text = String::from_utf8(text).map_err(serde::de::Error::custom)?;
        Ok(CompactJson(text.into_boxed_str()))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn it_round_trips_and_serializes_as_the_json_itself() {
        let value = json!({"seats": 5, "export": true, "tier": "pro"});
        let compact = CompactJson::from(&value);
        assert_eq!(compact.to_value(), value);
        let wrapped = json!({"features": compact.clone()});
        assert_eq!(wrapped["features"], value);
        let back: CompactJson =
            serde_json::from_str(&serde_json::to_string(&compact).expect("json")).expect("parses");
        assert_eq!(back, compact);
        assert_eq!(CompactJson::empty_object().to_map(), Map::new());
        assert!(serde_json::from_str::<CompactJson>("{nope").is_err());
        // Inside an internally tagged enum (buffered deserialization), as in the protocol.
        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "kind")]
        enum Tagged {
            One { features: CompactJson },
        }
        let tagged = Tagged::One {
            features: compact.clone(),
        };
        let text = serde_json::to_string(&tagged).expect("json");
        assert_eq!(
            serde_json::from_str::<Tagged>(&text).expect("parses"),
            tagged
        );
    }

    #[test]
    fn it_is_much_smaller_than_a_map() {
        let compact = CompactJson::from(&json!({"seats": 5, "export": true, "tier": "pro"}));
        assert!(compact.as_str().len() < 48, "{}", compact.as_str());
    }
}
