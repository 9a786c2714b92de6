//! A reader of BTF (the BPF Type Format, include/uapi/linux/btf.h): the `.BTF` section of an
//! object, or the kernel's /sys/kernel/btf/vmlinux. Only what vetting needs: every type's kind,
//! name and references, so that the `.maps` DATASEC can be read (`__uint(type, ...)` is encoded
//! as a pointer to an array whose element count is the value) and enums listed. Every length is
//! checked against the bytes there are; nothing panics on any input.

use crate::error::{Error, Result};

const MAGIC: u16 = 0xeb9f;
/// How many typedef/const/volatile/... hops a reference may take before it is called a loop.
const MAX_HOPS: usize = 64;

/// One BTF type (id = index + 1; id 0 is `void`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Type {
    /// Its name (empty when anonymous).
    pub name: String,
    /// Its kind and references.
    pub kind: Kind,
}

/// A BTF kind and the references vetting follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// BTF_KIND_INT.
    Int,
    /// BTF_KIND_PTR to a type.
    Ptr(u32),
    /// BTF_KIND_ARRAY: element type and element count.
    Array {
        /// Element type id.
        elem: u32,
        /// Number of elements.
        nelems: u32,
    },
    /// BTF_KIND_STRUCT or BTF_KIND_UNION: members as (name, type id).
    Composite(Vec<(String, u32)>),
    /// BTF_KIND_ENUM or BTF_KIND_ENUM64: (name, value).
    Enum(Vec<(String, i64)>),
    /// TYPEDEF, VOLATILE, CONST, RESTRICT, TYPE_TAG: a modifier of the referenced type.
    Modifier(u32),
    /// BTF_KIND_VAR of a type.
    Var(u32),
    /// BTF_KIND_DATASEC: (VAR type id, offset, size) of each variable.
    Datasec(Vec<(u32, u32, u32)>),
    /// FWD, FUNC, FUNC_PROTO, FLOAT, DECL_TAG: nothing vetting follows.
    Other,
}

/// A parsed BTF blob.
#[derive(Debug, Clone, Default)]
pub struct Btf {
    types: Vec<Type>,
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    let bytes = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_le_bytes(bytes.try_into().ok()?))
}

impl Btf {
    /// Parses a little-endian BTF blob.
    pub fn parse(data: &[u8]) -> Result<Btf> {
        let bad = |what: &str| Error::Btf(what.to_string());
        if data.len() < 24 {
            return Err(bad("shorter than its 24-byte header"));
        }
        let magic = u16::from_le_bytes([data[0], data[1]]);
        if magic != MAGIC {
            return Err(Error::Btf(format!(
                "magic {magic:#06x} (expected {MAGIC:#06x}, little-endian)"
            )));
        }
        let hdr_len = u32_at(data, 4).ok_or_else(|| bad("header"))? as usize;
        let field = |i: usize| u32_at(data, 8 + 4 * i).map(|v| v as usize);
        let (type_off, type_len, str_off, str_len) = match (field(0), field(1), field(2), field(3))
        {
            (Some(a), Some(b), Some(c), Some(d)) => (a, b, c, d),
            _ => return Err(bad("header")),
        };
        let section = |off: usize, len: usize, what: &str| {
            hdr_len
                .checked_add(off)
                .and_then(|start| Some((start, start.checked_add(len)?)))
                .and_then(|(start, end)| data.get(start..end))
                .ok_or_else(|| {
                    Error::Btf(format!(
                        "{what} (offset {off}, length {len}) lies outside the {} bytes there are",
                        data.len()
                    ))
                })
        };
        let types = section(type_off, type_len, "type section")?;
        let strings = section(str_off, str_len, "string section")?;
        let name = |off: u32| -> Result<String> {
            let rest = strings
                .get(off as usize..)
                .ok_or_else(|| Error::Btf(format!("name offset {off} past the string section")))?;
            let end = rest.iter().position(|&c| c == 0).unwrap_or(rest.len());
            Ok(String::from_utf8_lossy(&rest[..end]).into_owned())
        };
        let mut out = Vec::new();
        let mut pos = 0usize;
        while pos < types.len() {
            let id = out.len() + 1;
            let word = |i: usize| {
                u32_at(types, pos + 4 * i)
                    .ok_or_else(|| Error::Btf(format!("type {id} is cut off")))
            };
            let name_off = word(0)?;
            let info = word(1)?;
            let size_or_type = word(2)?;
            pos += 12;
            let vlen = (info & 0xffff) as usize;
            let kind_no = (info >> 24) & 0x1f;
            // Bytes that follow the common header, per kind.
            let extra = match kind_no {
                1 | 14 | 17 => 4,
                3 => 12,
                4 | 5 | 15 | 19 => vlen * 12,
                6 | 13 => vlen * 8,
                2 | 7..=12 | 16 | 18 => 0,
                k => return Err(Error::Btf(format!("type {id} has unknown kind {k}"))),
            };
            let body = types
                .get(pos..pos + extra)
                .ok_or_else(|| Error::Btf(format!("type {id} is cut off")))?;
            let b = |off: usize| u32_at(body, off).unwrap_or(0);
            let kind = match kind_no {
                1 => Kind::Int,
                2 => Kind::Ptr(size_or_type),
                3 => Kind::Array {
                    elem: b(0),
                    nelems: b(8),
                },
                4 | 5 => Kind::Composite(
                    (0..vlen)
                        .map(|i| Ok((name(b(i * 12))?, b(i * 12 + 4))))
                        .collect::<Result<_>>()?,
                ),
                6 => Kind::Enum(
                    (0..vlen)
                        .map(|i| Ok((name(b(i * 8))?, i64::from(b(i * 8 + 4) as i32))))
                        .collect::<Result<_>>()?,
                ),
                19 => Kind::Enum(
                    (0..vlen)
                        .map(|i| {
                            let v = (u64::from(b(i * 12 + 8)) << 32) | u64::from(b(i * 12 + 4));
                            Ok((name(b(i * 12))?, v as i64))
                        })
                        .collect::<Result<_>>()?,
                ),
                8..=11 | 18 => Kind::Modifier(size_or_type),
                14 => Kind::Var(size_or_type),
                15 => Kind::Datasec(
                    (0..vlen)
                        .map(|i| (b(i * 12), b(i * 12 + 4), b(i * 12 + 8)))
                        .collect(),
                ),
                _ => Kind::Other,
            };
            pos += extra;
            out.push(Type {
                name: name(name_off)?,
                kind,
            });
        }
        Ok(Btf { types: out })
    }

    /// The type with this id (`None` for `void` and ids past the end).
    pub fn get(&self, id: u32) -> Option<&Type> {
        (id as usize).checked_sub(1).and_then(|i| self.types.get(i))
    }

    /// Every type, id 1 first.
    pub fn types(&self) -> &[Type] {
        &self.types
    }

    /// The type `id` refers to once modifiers (typedef, const, volatile, ...) are skipped.
    pub fn resolve(&self, mut id: u32) -> Option<&Type> {
        for _ in 0..MAX_HOPS {
            let t = self.get(id)?;
            match t.kind {
                Kind::Modifier(next) => id = next,
                _ => return Some(t),
            }
        }
        None
    }

    /// The values of the enum named `name` (`bpf_func_id`), if there is one.
    pub fn enum_values(&self, name: &str) -> Option<&[(String, i64)]> {
        self.types.iter().find_map(|t| match &t.kind {
            Kind::Enum(values) if t.name == name => Some(values.as_slice()),
            _ => None,
        })
    }

    /// The variables of the DATASEC named `name` (`.maps`), as (variable name, type id of the
    /// variable's type).
    pub fn datasec_vars(&self, name: &str) -> Vec<(String, u32)> {
        let mut out = Vec::new();
        for t in &self.types {
            if let Kind::Datasec(vars) = &t.kind {
                if t.name != name {
                    continue;
                }
                for &(var, _, _) in vars {
                    if let Some(Type {
                        name,
                        kind: Kind::Var(ty),
                    }) = self.get(var)
                    {
                        out.push((name.clone(), *ty));
                    }
                }
            }
        }
        out
    }

    /// A BTF map definition (`struct { __uint(type, ...); ... }`) read from its struct type:
    /// its `type`, `max_entries`, and the inner map of a map-in-map (`__array(values, ...)`).
    pub fn map_def(&self, ty: u32) -> Option<BtfMapDef> {
        self.map_def_depth(ty, 0)
    }

    fn map_def_depth(&self, ty: u32, depth: usize) -> Option<BtfMapDef> {
        if depth > 4 {
            return None;
        }
        let Kind::Composite(members) = &self.resolve(ty)?.kind else {
            return None;
        };
        let mut def = BtfMapDef::default();
        for (name, mty) in members {
            match name.as_str() {
                "type" => def.map_type = self.uint_member(*mty),
                "max_entries" => def.max_entries = self.uint_member(*mty),
                "values" => {
                    // __array(values, struct inner): an array of pointers to the inner definition.
                    if let Some(Type {
                        kind: Kind::Array { elem, .. },
                        ..
                    }) = self.resolve(*mty)
                    {
                        if let Some(Type {
                            kind: Kind::Ptr(target),
                            ..
                        }) = self.resolve(*elem)
                        {
                            def.inner = self.map_def_depth(*target, depth + 1).map(Box::new);
                            def.has_values = true;
                        }
                    }
                }
                _ => {}
            }
        }
        Some(def)
    }

    /// `__uint(name, value)` is `int (*name)[value]`: the value is the array's element count.
    fn uint_member(&self, ty: u32) -> Option<u32> {
        let Kind::Ptr(target) = self.resolve(ty)?.kind else {
            return None;
        };
        match self.resolve(target)?.kind {
            Kind::Array { nelems, .. } => Some(nelems),
            _ => None,
        }
    }
}

/// What a BTF-defined map's struct says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BtfMapDef {
    /// `__uint(type, BPF_MAP_TYPE_...)`.
    pub map_type: Option<u32>,
    /// `__uint(max_entries, N)`.
    pub max_entries: Option<u32>,
    /// The inner map's definition (`__array(values, struct { ... })`) of a map-in-map.
    pub inner: Option<Box<BtfMapDef>>,
    /// Whether the definition has a `values` array (map-in-map or prog array initializers).
    pub has_values: bool,
}
