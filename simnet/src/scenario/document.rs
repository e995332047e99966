//! The parsed TOML document with its byte spans, used to say where an error
//! is: serde errors carry a span, semantic checks carry a key path, and both
//! are turned here into a file, line, column, key and table name.
//!
//! Overrides are spliced into the same document. Their values get spans past
//! the end of the file, one region per override, so that an error in an
//! overridden value names the override instead of a line of the file.

use std::borrow::Cow;
use std::ops::Range;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use toml::Spanned;
use toml::de::{DeArray, DeTable, DeValue};

use super::error::{Location, ScenarioError, humanise, key_form};

/// One step of a path into the document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Seg {
    /// A key of a table.
    Key(String),
    /// An element of an array, counted from 0.
    Index(usize),
}

/// Builds a path from keys and indices: `key_path!["site", 2, "parent"]`.
macro_rules! key_path {
    ($($seg:expr),* $(,)?) => {
        [$($crate::scenario::document::IntoSeg::into_seg($seg)),*]
    };
}
pub(crate) use key_path;

/// Conversion used by [`key_path!`].
pub(crate) trait IntoSeg {
    fn into_seg(self) -> Seg;
}

impl IntoSeg for &str {
    fn into_seg(self) -> Seg {
        Seg::Key(self.to_owned())
    }
}

impl IntoSeg for usize {
    fn into_seg(self) -> Seg {
        Seg::Index(self)
    }
}

/// An override spliced into the document, with its region of spans.
struct OverrideRegion {
    span: Range<usize>,
    key: String,
    value: String,
}

/// The text of a scenario, its parsed document and its overrides.
pub(crate) struct Document<'a> {
    file: String,
    text: &'a str,
    root: DeTable<'a>,
    overrides: Vec<OverrideRegion>,
}

impl<'a> Document<'a> {
    /// Parses `text`; a syntax error is reported with its position.
    pub(crate) fn parse(text: &'a str, file: &str) -> Result<Document<'a>, ScenarioError> {
        let mut doc =
            Document { file: file.to_owned(), text, root: DeTable::new(), overrides: Vec::new() };
        let (root, errors) = DeTable::parse_recoverable(text);
        if errors.is_empty() {
            doc.root = root.into_inner();
            return Ok(doc);
        }

        // Every syntax error the parser recovered from, each at its place;
        // only the first of a line, since the rest of a broken line is
        // usually the parser losing its footing rather than another error.
        let mut errors: Vec<ScenarioError> = errors.iter().map(|e| doc.syntax_error(e)).collect();
        let mut lines = std::collections::BTreeSet::new();
        errors.retain(|e| match e {
            ScenarioError::Syntax { at: Location::File { line, .. }, .. } => lines.insert(*line),
            _ => true,
        });
        Err(ScenarioError::from_list(errors).unwrap_or_else(|| unreachable!("errors exist")))
    }

    /// A TOML syntax error, located, with the key named for a duplicate.
    fn syntax_error(&self, e: &toml::de::Error) -> ScenarioError {
        let span = e.span().unwrap_or(0..0);
        let at = self.locate(span.start);
        let mut message = e.message().trim().replace('\n', "; ");
        if message == "duplicate key" {
            let key = self.text.get(span).unwrap_or("").trim().trim_matches('"');
            message = format!(
                "duplicate key `{key}`: a key may be given only once in a table; \
                 remove one of them"
            );
        }
        ScenarioError::Syntax { at, message }
    }

    /// The top-level table.
    pub(crate) fn root(&self) -> &DeTable<'a> {
        &self.root
    }

    /// Turns a byte offset into a location in the file or an override.
    pub(crate) fn locate(&self, offset: usize) -> Location {
        if let Some(region) = self.overrides.iter().find(|r| r.span.contains(&offset)) {
            return Location::Override { key: region.key.clone(), value: region.value.clone() };
        }
        let offset = floor_char_boundary(self.text, offset.min(self.text.len()));
        let before = &self.text[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Location::File {
            file: self.file.clone(),
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
        }
    }

    /// The line number of a byte offset, for "already defined on line N".
    pub(crate) fn line_of(&self, offset: usize) -> usize {
        match self.locate(offset) {
            Location::File { line, .. } => line,
            Location::Override { .. } => 0,
        }
    }

    /// The span of the value at `path`, or of its nearest existing ancestor
    /// when the value is absent (a missing key points at its table).
    pub(crate) fn span_of(&self, path: &[Seg]) -> usize {
        let mut best = 0;
        let mut table = Some(&self.root);
        let mut array: Option<&DeArray<'a>> = None;
        for seg in path {
            let found = match (seg, table, array) {
                (Seg::Key(k), Some(t), _) => t.get(k.as_str()),
                (Seg::Index(i), _, Some(a)) => a.get(*i),
                _ => None,
            };
            let Some(value) = found else { break };
            best = value.span().start;
            table = None;
            array = None;
            match value.get_ref() {
                DeValue::Table(t) => table = Some(t),
                DeValue::Array(a) => array = Some(a),
                _ => {}
            }
        }
        best
    }

    /// The path of the key or value whose span is `span`, preferring the
    /// deepest match; falls back to the deepest value containing it.
    pub(crate) fn path_at(&self, span: &Range<usize>) -> Vec<Seg> {
        let mut path = Vec::new();
        let mut exact = None;
        let mut containing = Vec::new();
        search_table(&self.root, span, &mut path, &mut exact, &mut containing);
        exact.unwrap_or(containing)
    }

    /// Names the key at the end of `path` and the table holding it, as a
    /// reader of the file would: (`poll`, `[client]`).
    pub(crate) fn describe(&self, path: &[Seg]) -> (String, String) {
        let last_key = path.iter().enumerate().rev().find_map(|(i, seg)| match seg {
            Seg::Key(key) => Some((i, key)),
            Seg::Index(_) => None,
        });
        match last_key {
            Some((i, key)) => (key.clone(), self.table_name(&path[..i])),
            None => (String::new(), self.table_name(&[])),
        }
    }

    /// Names a table by its path: `the top level`, `[client]`,
    /// `[[site]] "b"`, `` `wan` of [[site]] "b" ``.
    pub(crate) fn table_name(&self, path: &[Seg]) -> String {
        let array_at = path.iter().position(|s| matches!(s, Seg::Index(_)));
        let keys = |segs: &[Seg]| -> Vec<String> {
            segs.iter()
                .map(|s| match s {
                    Seg::Key(k) => k.clone(),
                    Seg::Index(i) => format!("#{}", i + 1),
                })
                .collect()
        };
        match array_at {
            None if path.is_empty() => "the top level".to_owned(),
            None => format!("[{}]", keys(path).join(".")),
            Some(i) => {
                let base = self.element_name(&path[..=i]);
                let rest = &path[i + 1..];
                if rest.is_empty() { base } else { format!("`{}` of {base}", keys(rest).join(".")) }
            }
        }
    }

    /// Names an array element: `[[site]] "b"` when it has a `name` or `id`,
    /// else `[[change]] #2`.
    fn element_name(&self, path: &[Seg]) -> String {
        let (Some(Seg::Index(i)), prefix) = (path.last(), &path[..path.len() - 1]) else {
            return self.table_name(path);
        };
        let array_name = match prefix {
            [] => String::new(),
            [Seg::Key(k)] => k.clone(),
            _ => self.table_name(prefix),
        };
        let text_of = |key: &str| match self.lookup(path) {
            Some(DeValue::Table(t)) => t.get(key).and_then(|v| v.get_ref().as_str()),
            _ => None,
        };
        let number = i + 1;
        if let Some(label) = text_of("name").or_else(|| text_of("id")) {
            return format!("[[{array_name}]] \"{label}\"");
        }

        // A fault's keys depend on its kind, so name the kind too.
        match text_of("kind") {
            Some(kind) if array_name == "fault" => format!("[[fault]] #{number} ({kind})"),
            _ => format!("[[{array_name}]] #{number}"),
        }
    }

    /// The value at `path`, if present.
    fn lookup(&self, path: &[Seg]) -> Option<&DeValue<'a>> {
        let mut value: Option<&DeValue<'a>> = None;
        for (n, seg) in path.iter().enumerate() {
            let next = match (seg, value) {
                (Seg::Key(k), None) if n == 0 => self.root.get(k.as_str()),
                (Seg::Key(k), Some(DeValue::Table(t))) => t.get(k.as_str()),
                (Seg::Index(i), Some(DeValue::Array(a))) => a.get(*i),
                _ => None,
            };
            value = Some(next?.get_ref());
        }
        value
    }

    /// Converts a serde error from deserialising this document into a
    /// located [`ScenarioError`].
    pub(crate) fn de_error(&self, err: &toml::de::Error) -> ScenarioError {
        self.de_error_path(err).0
    }

    /// [`Document::de_error`], with the path of the value at fault (for a
    /// missing key, of the table that lacks it).
    fn de_error_path(&self, err: &toml::de::Error) -> (ScenarioError, Vec<Seg>) {
        let span = err.span().unwrap_or(0..0);
        let at = self.locate(span.start);
        let path = self.path_at(&span);
        let error = self.de_error_inner(err, at, &path);
        (error, path)
    }

    fn de_error_inner(&self, err: &toml::de::Error, at: Location, path: &[Seg]) -> ScenarioError {
        let message = err.message().trim().replace('\n', "; ");
        let quoted = backticked_words(&message);

        // serde phrases unknown and missing fields in fixed forms; turn them
        // into our own wording with a suggestion.
        if message.starts_with("unknown field") {
            let key = quoted.first().cloned().unwrap_or_default();
            let expected: Vec<String> = quoted.iter().skip(1).cloned().collect();
            let suggestion = nearest(&key, expected.iter().map(String::as_str));
            let (_, table) = self.describe(path);
            return ScenarioError::UnknownKey { at, key, table, suggestion, expected };
        }
        if message.starts_with("missing field") {
            let key = quoted.first().cloned().unwrap_or_default();
            let table = self.table_name(path);
            let expected = key_form(&key, &table).map(|f| f.words.to_owned());
            return ScenarioError::MissingKey { at, key, table, expected };
        }
        let mut message = humanise(&message).replacen("unknown variant", "unknown value", 1);
        if message.starts_with("unknown value") {
            let given = quoted.first().cloned().unwrap_or_default();
            let options = quoted.iter().skip(1).map(String::as_str);
            if let Some(s) = nearest(&given, options) {
                message.push_str(&format!("; did you mean `{s}`?"));
            }
        }
        let (key, table) = self.describe(path);
        ScenarioError::BadValue { at, key, table, message }
    }

    /// Every key-level error of `value` (at `base` in the document) read
    /// as a `T`, not only the first: after each error the value at fault is
    /// set aside (an unknown key removed, a bad or missing value replaced
    /// by a valid stand-in of its key) and the value is read again.
    ///
    /// Empty when `value` reads as a `T`. A known limit: an error whose
    /// value has no stand-in (a missing key the format does not list, a
    /// bad element of an array of tables) ends the search there, so errors
    /// after it in the same pass are not reported until it is fixed.
    pub(crate) fn key_errors<T: for<'de> Deserialize<'de>>(
        &self,
        value: &Spanned<DeValue<'a>>,
        base: &[Seg],
    ) -> Vec<ScenarioError> {
        /// Enough passes for every key of a large file to be wrong once.
        const MAX_PASSES: usize = 200;
        let mut work = value.clone();
        let mut errors: Vec<ScenarioError> = Vec::new();
        for _ in 0..MAX_PASSES {
            let de = toml::de::ValueDeserializer::from(work.clone());
            let Err(err) = T::deserialize(de) else { break };
            let (error, path) = self.de_error_path(&err);
            let seen = errors.iter().any(|e| e.to_string() == error.to_string());
            let rel = path.strip_prefix(base).map(<[Seg]>::to_vec);
            let repaired = !seen && rel.is_some_and(|rel| repair(&mut work, &rel, &error));
            if !seen {
                errors.push(error);
            }
            if !repaired {
                break;
            }
        }
        errors
    }

    /// Sets `key` (dotted, already checked against the valid override keys)
    /// to `raw`, parsed as a TOML value when it is one and as a string
    /// otherwise, so that both `15m` and `"15m"` work.
    pub(crate) fn apply_override(&mut self, key: &str, raw: &'a str) -> Result<(), ScenarioError> {
        let start = self.overrides.last().map_or(self.text.len(), |r| r.span.end) + 1;
        let span = start..start + raw.len().max(1);
        self.overrides.push(OverrideRegion {
            span: span.clone(),
            key: key.to_owned(),
            value: raw.to_owned(),
        });
        let value = match DeValue::parse(raw) {
            Ok(parsed) => shift_value(parsed, start),
            Err(_) => Spanned::new(span.clone(), DeValue::String(Cow::Borrowed(raw))),
        };

        // Walk down the dotted key, creating tables absent from the file.
        let segments: Vec<&str> = key.split('.').collect();
        let (last, parents) = segments.split_last().unwrap_or((&"", &[]));
        let mut table = &mut self.root;
        for (depth, part) in parents.iter().enumerate() {
            let entry = table
                .entry(Spanned::new(span.clone(), Cow::Owned((*part).to_owned())))
                .or_insert_with(|| Spanned::new(span.clone(), DeValue::Table(DeTable::new())));
            match entry.get_mut() {
                DeValue::Table(t) => table = t,
                _ => {
                    let name = segments[..=depth].join(".");
                    return Err(ScenarioError::BadOverride {
                        key: key.to_owned(),
                        message: format!("`{name}` in the file is not a table"),
                    });
                }
            }
        }
        table.remove(*last);
        table.insert(Spanned::new(span, Cow::Owned((*last).to_owned())), value);
        Ok(())
    }
}

/// Sets aside the value at `rel` (relative to `work`) that `error` is
/// about, so that reading `work` again goes past it; false when it cannot.
fn repair(work: &mut Spanned<DeValue<'_>>, rel: &[Seg], error: &ScenarioError) -> bool {
    let stand_in = |key: &str, table: &str, span: Range<usize>| {
        let form = key_form(key, table)?;
        // Parsed from a 'static text, the stand-in borrows nothing.
        let parsed = DeValue::parse(form.stand_in).ok()?.into_inner();
        Some(Spanned::new(span, parsed))
    };
    match error {
        ScenarioError::UnknownKey { key, .. } => {
            // The path is the key's own; its parent is the table holding it.
            let parent = match rel.last() {
                Some(Seg::Key(k)) if k == key => &rel[..rel.len() - 1],
                _ => rel,
            };
            match value_at(work, parent).map(Spanned::get_mut) {
                Some(DeValue::Table(t)) => t.remove(key.as_str()).is_some(),
                _ => false,
            }
        }
        ScenarioError::MissingKey { key, table, .. } => {
            let Some(target) = value_at(work, rel) else { return false };
            let span = target.span();
            let Some(value) = stand_in(key, table, span.clone()) else { return false };
            let DeValue::Table(t) = target.get_mut() else { return false };
            t.insert(Spanned::new(span, Cow::Owned(key.clone())), value);
            true
        }
        ScenarioError::BadValue { key, table, .. } => {
            let Some((last, parent)) = rel.split_last() else { return false };
            let Some(target) = value_at(work, rel) else { return false };
            let span = target.span();
            if let Some(value) = stand_in(key, table, span.clone()) {
                *target = value;
                return true;
            }
            match (last, value_at(work, parent).map(Spanned::get_mut)) {
                // An optional key: leave it out.
                (Seg::Key(k), Some(DeValue::Table(t))) => t.remove(k.as_str()).is_some(),
                // An element of a list of names: a string stands in.
                (Seg::Index(i), Some(DeValue::Array(a))) => match a.get_mut(*i) {
                    Some(item) if !item.get_ref().is_table() => {
                        *item = Spanned::new(span, DeValue::String(Cow::Borrowed("x")));
                        true
                    }
                    _ => false,
                },
                _ => false,
            }
        }
        _ => false,
    }
}

/// The value at `rel` below `work`, for changing it.
fn value_at<'w, 'a>(
    work: &'w mut Spanned<DeValue<'a>>,
    rel: &[Seg],
) -> Option<&'w mut Spanned<DeValue<'a>>> {
    let mut value = work;
    for seg in rel {
        value = match (seg, value.get_mut()) {
            (Seg::Key(k), DeValue::Table(t)) => t.get_mut(k.as_str())?,
            (Seg::Index(i), DeValue::Array(a)) => a.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(value)
}

/// Depth-first search for `target`, recording the deepest exact match and
/// the deepest value that contains the target's start.
fn search_table(
    table: &DeTable<'_>,
    target: &Range<usize>,
    path: &mut Vec<Seg>,
    exact: &mut Option<Vec<Seg>>,
    containing: &mut Vec<Seg>,
) {
    for (key, value) in table.iter() {
        path.push(Seg::Key(key.get_ref().to_string()));
        search_value(value, target, path, exact, containing);
        if exact.is_none() && key.span() == *target {
            *exact = Some(path.clone());
        }
        path.pop();
        if exact.is_some() {
            return;
        }
    }
}

fn search_value(
    value: &Spanned<DeValue<'_>>,
    target: &Range<usize>,
    path: &mut Vec<Seg>,
    exact: &mut Option<Vec<Seg>>,
    containing: &mut Vec<Seg>,
) {
    // Children first, so that the first [[site]] wins over the `site` array
    // that shares its span.
    match value.get_ref() {
        DeValue::Table(t) => search_table(t, target, path, exact, containing),
        DeValue::Array(a) => {
            for (i, item) in a.iter().enumerate() {
                path.push(Seg::Index(i));
                search_value(item, target, path, exact, containing);
                path.pop();
                if exact.is_some() {
                    return;
                }
            }
        }
        _ => {}
    }
    if exact.is_some() {
        return;
    }
    let span = value.span();
    if span == *target {
        *exact = Some(path.clone());
    } else if span.contains(&target.start) && path.len() > containing.len() {
        *containing = path.clone();
    }
}

/// Moves every span in a value parsed from an override string to that
/// override's region past the end of the file.
fn shift_value(value: Spanned<DeValue<'_>>, by: usize) -> Spanned<DeValue<'_>> {
    let span = value.span();
    let span = span.start + by..span.end + by;
    let inner = match value.into_inner() {
        DeValue::Table(t) => DeValue::Table(
            t.into_iter()
                .map(|(k, v)| {
                    let ks = k.span();
                    let key = Spanned::new(ks.start + by..ks.end + by, k.into_inner());
                    (key, shift_value(v, by))
                })
                .collect(),
        ),
        DeValue::Array(a) => DeValue::Array(a.into_iter().map(|v| shift_value(v, by)).collect()),
        other => other,
    };
    Spanned::new(span, inner)
}

/// The largest char boundary at or below `offset`.
fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    while offset > 0 && !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// The words between backticks in a message, in order.
fn backticked_words(message: &str) -> Vec<String> {
    message.split('`').skip(1).step_by(2).map(str::to_owned).collect()
}

/// Similarity needed before a name is offered as "did you mean"; below this
/// the guess is more likely to mislead than help (`rate` is not `site`).
const SUGGESTION_THRESHOLD: f64 = 0.8;

/// The candidate closest to `word`, if it is close enough to be a typo.
/// Case is ignored, so `europe/london` finds `Europe/London`.
pub(crate) fn nearest<'c>(word: &str, candidates: impl Iterator<Item = &'c str>) -> Option<String> {
    let word = word.to_lowercase();
    let mut best: Option<(f64, &str)> = None;
    for candidate in candidates {
        let score = strsim::jaro_winkler(&word, &candidate.to_lowercase());
        if score >= SUGGESTION_THRESHOLD && best.is_none_or(|(s, _)| score > s) {
            best = Some((score, candidate));
        }
    }
    best.map(|(_, c)| c.to_owned())
}

/// The field names a derived `Deserialize` struct accepts, read from the
/// list serde passes to `deserialize_struct`, so override keys stay in step
/// with the model without a second list to maintain.
pub(crate) fn field_names<T: for<'de> Deserialize<'de>>() -> &'static [&'static str] {
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(FieldProbe(&mut fields));
    fields
}

/// A deserializer that only records the field list it is asked for.
struct FieldProbe<'f>(&'f mut &'static [&'static str]);

impl<'de> Deserializer<'de> for FieldProbe<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("only structs can be probed"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(de::Error::custom("probe finished"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "name = \"x\"\n[client]\npoll = \"1h\"\n\n[[site]]\nname = \"a\"\n\
                        wan = { latency = \"1ms\" }\n";

    #[test]
    fn locates_lines_and_columns() {
        let doc = Document::parse(TEXT, "t.toml").unwrap();
        let poll = doc.span_of(&key_path!["client", "poll"]);
        assert_eq!(doc.locate(poll).to_string(), "t.toml:3:8");
        let latency = doc.span_of(&key_path!["site", 0, "wan", "latency"]);
        assert_eq!(doc.locate(latency).to_string(), "t.toml:7:19");
        let absent = doc.span_of(&key_path!["site", 0, "timezone"]);
        assert_eq!(doc.locate(absent).to_string(), "t.toml:5:1");
    }

    #[test]
    fn names_tables_as_written() {
        let doc = Document::parse(TEXT, "t.toml").unwrap();
        assert_eq!(doc.table_name(&[]), "the top level");
        assert_eq!(doc.table_name(&key_path!["client"]), "[client]");
        assert_eq!(doc.table_name(&key_path!["site", 0]), "[[site]] \"a\"");
        assert_eq!(doc.table_name(&key_path!["site", 0, "wan"]), "`wan` of [[site]] \"a\"");
    }

    #[test]
    fn finds_the_path_of_a_span() {
        let doc = Document::parse(TEXT, "t.toml").unwrap();
        let start = doc.span_of(&key_path!["site", 0, "wan", "latency"]);
        let span = start..start + 5;
        assert_eq!(doc.path_at(&span), key_path!["site", 0, "wan", "latency"]);
    }

    #[test]
    fn syntax_errors_are_located() {
        let err = Document::parse("a = 1\nb = = 2\n", "t.toml").err().unwrap();
        assert!(err.to_string().starts_with("t.toml:2:"), "{err}");
    }

    #[test]
    fn overrides_get_their_own_location() {
        let mut doc = Document::parse(TEXT, "t.toml").unwrap();
        doc.apply_override("client.poll", "15m").unwrap();
        let at = doc.span_of(&key_path!["client", "poll"]);
        assert_eq!(doc.locate(at).to_string(), "override `client.poll=15m`");
        doc.apply_override("client.offline.share", "0.5").unwrap();
        let at = doc.span_of(&key_path!["client", "offline", "share"]);
        assert_eq!(doc.locate(at).to_string(), "override `client.offline.share=0.5`");
    }

    #[test]
    fn suggests_only_close_names() {
        let keys = ["poll", "splay", "status_every"];
        assert_eq!(nearest("spaly", keys.into_iter()).as_deref(), Some("splay"));
        assert_eq!(nearest("rate", ["site", "from", "to"].into_iter()), None);
    }
}
