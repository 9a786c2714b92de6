//! A deserializer over a JSON value that notes every field the typed objects do not know
//! (`priviliged`), with the fields they do know at that place, while k8s-openapi decodes it.
//! k8s-openapi ignores unknown fields, as the API server drops them; kubectl's strict field
//! validation reports them, and so does the loader, as warnings naming the closest known field.

use std::cell::RefCell;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Where a value sits in the object.
#[derive(Clone, Copy)]
pub(crate) enum Path<'p> {
    Root,
    Key(&'p Path<'p>, &'p str),
    Index(&'p Path<'p>, usize),
}

impl Path<'_> {
    /// `spec.containers[0].securityContext`.
    pub(crate) fn render(&self) -> String {
        match self {
            Path::Root => String::new(),
            Path::Key(parent, key) => {
                let p = parent.render();
                if p.is_empty() {
                    (*key).to_string()
                } else {
                    format!("{p}.{key}")
                }
            }
            Path::Index(parent, i) => format!("{}[{i}]", parent.render()),
        }
    }
}

/// A field the schema does not have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UnknownField {
    /// The full path of the unknown field.
    pub(crate) path: String,
    /// The known field closest to it, when one is close enough to be a typo.
    pub(crate) closest: Option<&'static str>,
}

/// A deserializer over `value` that records unknown struct fields into `sink`.
pub(crate) struct Probe<'a, 'p> {
    pub(crate) value: &'a Value,
    pub(crate) path: Path<'p>,
    pub(crate) sink: &'p RefCell<Vec<UnknownField>>,
}

macro_rules! delegate {
    ($($method:ident)*) => {
        $(
            fn $method<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Self::Error> {
                self.value.$method(visitor)
            }
        )*
    };
}

impl<'a> Deserializer<'a> for Probe<'a, '_> {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.value {
            Value::Object(map) => visitor.visit_map(ProbeMap::new(map, self.path, self.sink)),
            Value::Array(items) => visitor.visit_seq(ProbeSeq {
                items: items.iter().enumerate(),
                path: self.path,
                sink: self.sink,
            }),
            other => other.deserialize_any(visitor),
        }
    }

    fn deserialize_option<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.value {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'a>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.value {
            Value::Array(_) => self.deserialize_any(visitor),
            other => other.deserialize_seq(visitor),
        }
    }

    fn deserialize_tuple<V: Visitor<'a>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'a>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.value {
            Value::Object(_) => self.deserialize_any(visitor),
            other => other.deserialize_map(visitor),
        }
    }

    fn deserialize_struct<V: Visitor<'a>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        let Value::Object(map) = self.value else {
            return self.value.deserialize_struct(name, fields, visitor);
        };
        for key in map.keys() {
            if !fields.contains(&key.as_str()) {
                self.sink.borrow_mut().push(UnknownField {
                    path: Path::Key(&self.path, key).render(),
                    closest: closest(key, fields),
                });
            }
        }
        visitor.visit_map(ProbeMap::new(map, self.path, self.sink))
    }

    fn deserialize_enum<V: Visitor<'a>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.value.deserialize_enum(name, variants, visitor)
    }

    fn deserialize_unit_struct<V: Visitor<'a>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.value.deserialize_unit_struct(name, visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_unit()
    }

    delegate! {
        deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64
        deserialize_u128 deserialize_f32 deserialize_f64 deserialize_char deserialize_str
        deserialize_string deserialize_bytes deserialize_byte_buf deserialize_unit
        deserialize_identifier
    }
}

struct ProbeMap<'a, 'p> {
    entries: serde_json::map::Iter<'a>,
    value: Option<(&'a str, &'a Value)>,
    path: Path<'p>,
    sink: &'p RefCell<Vec<UnknownField>>,
}

impl<'a, 'p> ProbeMap<'a, 'p> {
    fn new(
        map: &'a Map<String, Value>,
        path: Path<'p>,
        sink: &'p RefCell<Vec<UnknownField>>,
    ) -> Self {
        ProbeMap {
            entries: map.iter(),
            value: None,
            path,
            sink,
        }
    }
}

impl<'a> MapAccess<'a> for ProbeMap<'a, '_> {
    type Error = serde_json::Error;

    fn next_key_seed<K: DeserializeSeed<'a>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some((key, value));
        seed.deserialize(de::value::BorrowedStrDeserializer::new(key))
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'a>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, Self::Error> {
        let (key, value) = self
            .value
            .take()
            .ok_or_else(|| de::Error::custom("a map value was asked for before its key"))?;
        seed.deserialize(Probe {
            value,
            path: Path::Key(&self.path, key),
            sink: self.sink,
        })
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

struct ProbeSeq<'a, 'p> {
    items: std::iter::Enumerate<std::slice::Iter<'a, Value>>,
    path: Path<'p>,
    sink: &'p RefCell<Vec<UnknownField>>,
}

impl<'a> SeqAccess<'a> for ProbeSeq<'a, '_> {
    type Error = serde_json::Error;

    fn next_element_seed<T: DeserializeSeed<'a>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Self::Error> {
        let Some((i, value)) = self.items.next() else {
            return Ok(None);
        };
        seed.deserialize(Probe {
            value,
            path: Path::Index(&self.path, i),
            sink: self.sink,
        })
        .map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

/// The known field a typo most likely meant: the smallest edit distance (case-insensitive),
/// at most a third of the name's length (at least 1, at most 3).
pub(crate) fn closest(key: &str, fields: &'static [&'static str]) -> Option<&'static str> {
    let limit = (key.chars().count() / 3).clamp(1, 3);
    let key = key.to_ascii_lowercase();
    fields
        .iter()
        .map(|f| (edit_distance(&key, &f.to_ascii_lowercase()), *f))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, f)| f)
}

/// Levenshtein distance over chars.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        current[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitute.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;
    use serde::Deserialize;
    use serde_json::json;

    #[test]
    fn unknown_fields_are_found_with_the_closest_known_one() {
        let value = json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "lables": {"a": "b"}},
            "spec": {"containers": [{"name": "c", "securityContext": {"priviliged": true}}],
                     "hostnetwork": true, "frobnicate": 1}
        });
        let sink = RefCell::new(Vec::new());
        let pod = Pod::deserialize(Probe {
            value: &value,
            path: Path::Root,
            sink: &sink,
        })
        .unwrap();
        assert_eq!(pod.spec.unwrap().host_network, None);
        let found = sink.into_inner();
        let by_path = |p: &str| found.iter().find(|u| u.path == p).unwrap().closest;
        assert_eq!(
            by_path("spec.containers[0].securityContext.priviliged"),
            Some("privileged")
        );
        assert_eq!(by_path("spec.hostnetwork"), Some("hostNetwork"));
        assert_eq!(by_path("metadata.lables"), Some("labels"));
        assert_eq!(by_path("spec.frobnicate"), None);
        assert_eq!(found.len(), 4, "{found:?}");
    }

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("priviliged", "privileged"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
