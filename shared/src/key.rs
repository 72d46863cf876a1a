//! License keys: `[PREFIX-]XXXXX-XXXXX-XXXXX-XXXXX-XXXXX`.
//!
//! The body is 25 characters of Crockford base32 (5 bits each, 125 bits of randomness from the
//! operating system's CSPRNG) in five readable groups. A product may give its keys a prefix
//! such as `ACME`. [`LicenseKey`] can only hold a well-formed key ("parse, don't validate"):
//! parsing is case-insensitive and forgiving of the look-alikes Crockford allows (`O` → `0`,
//! `I`/`L` → `1`), and always yields the canonical upper-case form that is stored and compared.

use std::fmt;
use std::str::FromStr;

use arrayvec::ArrayString;
use rand::Rng;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Crockford's base32 alphabet: no I, L, O or U.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const GROUPS: usize = 5;
const GROUP_LEN: usize = 5;
/// Longest accepted prefix.
pub const MAX_PREFIX_LEN: usize = 16;

/// Why a string is not a license key or a key prefix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseKeyError {
    #[error("a license key has five groups of five characters, optionally after a prefix")]
    Shape,
    #[error("license key group {0} contains a character outside Crockford base32")]
    Character(usize),
    #[error("a key prefix is 1 to {MAX_PREFIX_LEN} letters and digits and starts with a letter")]
    Prefix,
}

/// A per-product key prefix: 1 to 16 ASCII letters and digits, starting with a letter,
/// stored upper-case.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyPrefix(String);

impl KeyPrefix {
    pub fn parse(raw: &str) -> Result<Self, ParseKeyError> {
        let valid = (1..=MAX_PREFIX_LEN).contains(&raw.len())
            && raw.starts_with(|c: char| c.is_ascii_alphabetic())
            && raw.chars().all(|c| c.is_ascii_alphanumeric());
        if valid {
            Ok(Self(raw.to_ascii_uppercase()))
        } else {
            Err(ParseKeyError::Prefix)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Longest canonical key: a prefix, a dash, and five groups with four dashes between them.
const MAX_KEY_LEN: usize = MAX_PREFIX_LEN + 1 + GROUPS * GROUP_LEN + GROUPS - 1;

/// A well-formed license key in canonical form, held inline (no heap allocation): parsing,
/// cloning into answers and comparing in the data plane's store touch no other memory.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LicenseKey(ArrayString<MAX_KEY_LEN>);

impl LicenseKey {
    /// A fresh random key, with the product's prefix when it has one.
    pub fn generate(prefix: Option<&KeyPrefix>) -> Self {
        let mut rng = rand::rng();
        let mut key = ArrayString::new();
        if let Some(prefix) = prefix {
            // A prefix is at most MAX_PREFIX_LEN characters: the key always fits.
            key.push_str(prefix.as_str());
            key.push('-');
        }
        for group in 0..GROUPS {
            if group > 0 {
                key.push('-');
            }
            for _ in 0..GROUP_LEN {
                key.push(char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]));
            }
        }
        Self(key)
    }

    /// Parses user input into the canonical key.
    pub fn parse(raw: &str) -> Result<Self, ParseKeyError> {
        let raw = raw.trim();
        // At most a prefix and five groups; anything longer is the wrong shape.
        let mut parts = [""; GROUPS + 1];
        let mut count = 0;
        for part in raw.split('-') {
            *parts.get_mut(count).ok_or(ParseKeyError::Shape)? = part;
            count += 1;
        }
        let (prefix, groups) = match count {
            GROUPS => (None, &parts[..GROUPS]),
            n if n == GROUPS + 1 => (Some(KeyPrefix::parse(parts[0])?), &parts[1..]),
            _ => return Err(ParseKeyError::Shape),
        };
        // Fits: the prefix is at most MAX_PREFIX_LEN characters and the groups were counted.
        let mut key = ArrayString::<MAX_KEY_LEN>::new();
        if let Some(prefix) = &prefix {
            key.push_str(prefix.as_str());
            key.push('-');
        }
        for (index, group) in groups.iter().enumerate() {
            if group.len() != GROUP_LEN {
                return Err(ParseKeyError::Shape);
            }
            if index > 0 {
                key.push('-');
            }
            for byte in group.bytes() {
                match CANONICAL_DIGIT[usize::from(byte)] {
                    0 => return Err(ParseKeyError::Character(index + 1)),
                    digit => key.push(char::from(digit)),
                }
            }
        }
        Ok(Self(key))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The prefix part of the key, if any.
    pub fn prefix(&self) -> Option<&str> {
        let body_len = GROUPS * GROUP_LEN + GROUPS - 1;
        (self.0.len() > body_len).then(|| &self.0[..self.0.len() - body_len - 1])
    }

    pub fn into_string(self) -> String {
        self.0.to_string()
    }
}

/// Every input byte's canonical Crockford digit (either case, look-alikes mapped), or 0 when
/// the byte is not one: a table look-up per character on the verify path.
const CANONICAL_DIGIT: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut index = 0;
    while index < ALPHABET.len() {
        let digit = ALPHABET[index];
        table[digit as usize] = digit;
        table[digit.to_ascii_lowercase() as usize] = digit;
        index += 1;
    }
    table[b'O' as usize] = b'0';
    table[b'o' as usize] = b'0';
    table[b'I' as usize] = b'1';
    table[b'i' as usize] = b'1';
    table[b'L' as usize] = b'1';
    table[b'l' as usize] = b'1';
    table
};

impl FromStr for LicenseKey {
    type Err = ParseKeyError;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        Self::parse(raw)
    }
}

impl fmt::Display for LicenseKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

impl AsRef<str> for LicenseKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for LicenseKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0.as_str())
    }
}

impl<'de> Deserialize<'de> for LicenseKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// Parses the key straight from the deserializer's text (no `String` per key).
struct KeyVisitor;

impl serde::de::Visitor<'_> for KeyVisitor {
    type Value = LicenseKey;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a license key")
    }

    fn visit_str<E: serde::de::Error>(self, raw: &str) -> Result<LicenseKey, E> {
        LicenseKey::parse(raw).map_err(E::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn generated_keys_parse_back_to_themselves() {
        let prefix = KeyPrefix::parse("acme").expect("valid prefix");
        for key in [
            LicenseKey::generate(None),
            LicenseKey::generate(Some(&prefix)),
        ] {
            assert_eq!(LicenseKey::parse(key.as_str()), Ok(key.clone()));
        }
        let key = LicenseKey::generate(Some(&prefix));
        assert!(key.as_str().starts_with("ACME-"));
        assert_eq!(key.prefix(), Some("ACME"));
        assert_eq!(LicenseKey::generate(None).prefix(), None);
    }

    #[test]
    fn generated_keys_do_not_repeat() {
        let keys: HashSet<_> = (0..10_000).map(|_| LicenseKey::generate(None)).collect();
        assert_eq!(keys.len(), 10_000);
    }

    #[test]
    fn parsing_is_case_insensitive_and_maps_look_alikes() {
        let key = LicenseKey::parse(" acme-abcde-fghjk-mnpqr-stvwx-yz0o1 ").expect("parses");
        assert_eq!(key.as_str(), "ACME-ABCDE-FGHJK-MNPQR-STVWX-YZ001");
        let key = LicenseKey::parse("iiiii-lllll-ooooo-00000-11111").expect("parses");
        assert_eq!(key.as_str(), "11111-11111-00000-00000-11111");
    }

    #[test]
    fn malformed_keys_are_refused_with_a_reason() {
        assert_eq!(LicenseKey::parse(""), Err(ParseKeyError::Shape));
        assert_eq!(LicenseKey::parse("ABCDE-FGHJK"), Err(ParseKeyError::Shape));
        assert_eq!(
            LicenseKey::parse("ABCDE-FGHJK-MNPQR-STVWX-YZ01"),
            Err(ParseKeyError::Shape)
        );
        assert_eq!(
            LicenseKey::parse("ABCDE-FGHJK-MNPQR-STVWX-YZ01U"),
            Err(ParseKeyError::Character(5))
        );
        assert_eq!(
            LicenseKey::parse("1ACME-ABCDE-FGHJK-MNPQR-STVWX-YZ012"),
            Err(ParseKeyError::Prefix)
        );
        assert_eq!(
            LicenseKey::parse("A-B-ABCDE-FGHJK-MNPQR-STVWX-YZ012"),
            Err(ParseKeyError::Shape)
        );
        assert!(LicenseKey::parse("ABCDÉ-FGHJK-MNPQR-STVWX-YZ012").is_err());
    }

    #[test]
    fn prefixes_are_bounded() {
        assert!(KeyPrefix::parse("A").is_ok());
        assert!(KeyPrefix::parse("ABCDEFGHIJKLMNOP").is_ok());
        assert_eq!(
            KeyPrefix::parse("ABCDEFGHIJKLMNOPQ"),
            Err(ParseKeyError::Prefix)
        );
        assert_eq!(KeyPrefix::parse(""), Err(ParseKeyError::Prefix));
        assert_eq!(KeyPrefix::parse("AC-ME"), Err(ParseKeyError::Prefix));
    }
}
