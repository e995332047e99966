//! Policy parameters: a tree of typed values, and the overlay merge.

use std::cell::Cell;
use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

/// A parameter table: key to value, ordered so that encoding and merging
/// are deterministic.
pub type Params = BTreeMap<String, Value>;

/// One typed parameter value.
///
/// Decoding refuses trees nested deeper than [`MAX_DEPTH`], so a hostile
/// frame of a million nested lists is an error instead of a stack overflow.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum Value {
    /// `true` / `false`.
    Bool(bool),
    /// A signed integer.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// A string.
    Str(String),
    /// A list; an overlay replaces a list whole, it never merges items.
    List(Vec<Value>),
    /// A nested table; an overlay merges into it key by key.
    Map(Params),
}

/// Deepest nesting of lists and tables accepted when decoding.
pub const MAX_DEPTH: u32 = 32;

thread_local! {
    /// Nesting depth of the `Value` being decoded on this thread. Decoding
    /// is synchronous, so a per-thread counter is exact; it is reset by the
    /// guard on every exit path, errors included.
    static DECODE_DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// Holds one level of decode depth while alive.
struct DepthGuard;

impl DepthGuard {
    fn enter() -> Option<DepthGuard> {
        DECODE_DEPTH.with(|d| {
            if d.get() >= MAX_DEPTH {
                None
            } else {
                d.set(d.get() + 1);
                Some(DepthGuard)
            }
        })
    }
}

impl Drop for DepthGuard {
    fn drop(&mut self) {
        DECODE_DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
    }
}

/// The derived decoder of [`Value`]'s shape; its children decode through
/// `Value`'s own impl, which counts depth.
#[derive(Deserialize)]
#[serde(rename = "Value")]
enum ValueShape {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<Value>),
    Map(Params),
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        let Some(_guard) = DepthGuard::enter() else {
            return Err(serde::de::Error::custom("parameter tree nested too deeply"));
        };
        Ok(match ValueShape::deserialize(d)? {
            ValueShape::Bool(b) => Value::Bool(b),
            ValueShape::Int(i) => Value::Int(i),
            ValueShape::Float(f) => Value::Float(f),
            ValueShape::Str(s) => Value::Str(s),
            ValueShape::List(l) => Value::List(l),
            ValueShape::Map(m) => Value::Map(m),
        })
    }
}

/// Merges `overlay` into `base` and returns the result.
///
/// The rule, applied key by key:
/// - a key only in `base` or only in `overlay` is kept;
/// - a key in both whose values are both tables is merged recursively;
/// - otherwise the overlay's value wins (lists and scalars are replaced
///   whole, so an overlay can shorten a list).
///
/// Example: `base = {scan = "daily", limits = {cpu = 50, io = 20}}` with
/// `overlay = {limits = {cpu = 25}, exclude = ["/data"]}` gives
/// `{scan = "daily", limits = {cpu = 25, io = 20}, exclude = ["/data"]}`.
///
/// The merge is deterministic because tables are ordered maps; it is
/// associative, so applying site then platform overlays one after the other
/// equals merging the overlays first.
pub fn merge(base: &Params, overlay: &Params) -> Params {
    let mut out = base.clone();
    merge_into(&mut out, overlay);
    out
}

/// Merges `overlay` into `target` in place, by the rule of [`merge`].
pub fn merge_into(target: &mut Params, overlay: &Params) {
    for (key, value) in overlay {
        match (target.get_mut(key), value) {
            (Some(Value::Map(existing)), Value::Map(incoming)) => merge_into(existing, incoming),
            _ => {
                target.insert(key.clone(), value.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, Value)]) -> Params {
        pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
    }

    #[test]
    fn documented_example_holds() {
        let base = map(&[
            ("scan", Value::Str("daily".into())),
            ("limits", Value::Map(map(&[("cpu", Value::Int(50)), ("io", Value::Int(20))]))),
        ]);
        let overlay = map(&[
            ("limits", Value::Map(map(&[("cpu", Value::Int(25))]))),
            ("exclude", Value::List(vec![Value::Str("/data".into())])),
        ]);
        let want = map(&[
            ("scan", Value::Str("daily".into())),
            ("limits", Value::Map(map(&[("cpu", Value::Int(25)), ("io", Value::Int(20))]))),
            ("exclude", Value::List(vec![Value::Str("/data".into())])),
        ]);
        assert_eq!(merge(&base, &overlay), want);
    }

    #[test]
    fn overlay_replaces_lists_and_scalars_whole() {
        let base = map(&[("allow", Value::List(vec![Value::Int(1), Value::Int(2)]))]);
        let overlay = map(&[("allow", Value::List(vec![Value::Int(3)]))]);
        assert_eq!(merge(&base, &overlay)["allow"], Value::List(vec![Value::Int(3)]));
        let overlay = map(&[("allow", Value::Bool(false))]);
        assert_eq!(merge(&base, &overlay)["allow"], Value::Bool(false));
    }
}
