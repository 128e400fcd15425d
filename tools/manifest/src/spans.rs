//! Positions: the span of every key and value in the document, from toml's spanned parse, so
//! a field path finds its line and a span from toml finds its field path.

use crate::error::{FieldPath, Segment};
use core::ops::Range;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// A value's span and, for tables and arrays, its children's.
#[derive(Debug)]
struct Node {
    span: Range<usize>,
    children: Children,
}

#[derive(Debug)]
enum Children {
    Leaf,
    /// Key, key span, value.
    Table(Vec<(String, Range<usize>, Node)>),
    Array(Vec<Node>),
}

impl Node {
    fn new(value: &Spanned<DeValue<'_>>) -> Self {
        let children = match value.get_ref() {
            DeValue::Table(table) => Children::Table(
                table
                    .iter()
                    .map(|(key, value)| (key.get_ref().to_string(), key.span(), Node::new(value)))
                    .collect(),
            ),
            DeValue::Array(array) => Children::Array(array.iter().map(Node::new).collect()),
            _ => Children::Leaf,
        };
        Node {
            span: value.span(),
            children,
        }
    }
}

/// The document's positions.
#[derive(Debug)]
pub(crate) struct SpanIndex<'a> {
    text: &'a str,
    root: Node,
}

impl<'a> SpanIndex<'a> {
    pub(crate) fn new(text: &'a str, document: &Spanned<DeTable<'_>>) -> Self {
        let root = Spanned::new(document.span(), DeValue::Table(document.get_ref().clone()));
        Self {
            text,
            root: Node::new(&root),
        }
    }

    /// The 1-based line and column of byte `offset`.
    pub(crate) fn line_column(&self, offset: usize) -> (usize, usize) {
        line_column(self.text, offset)
    }

    /// The span of the field at `path`, or of its nearest ancestor that the document has (a
    /// field left to its default points at its table).
    pub(crate) fn span_of(&self, path: &FieldPath) -> Range<usize> {
        let mut node = &self.root;
        let mut best = node.span.clone();
        for segment in &path.0 {
            let next = match (segment, &node.children) {
                (Segment::Key(key), Children::Table(entries)) => entries
                    .iter()
                    .find(|(name, _, _)| name == key)
                    .map(|(_, _, value)| value),
                (Segment::Index(index), Children::Array(items)) => items.get(*index),
                _ => None,
            };
            let Some(value) = next else { break };
            best = value.span.clone();
            node = value;
        }
        best
    }

    /// The path of the innermost field whose key or value contains byte `offset`.
    pub(crate) fn path_at(&self, offset: usize) -> FieldPath {
        let mut path = FieldPath::root();
        find(&self.root, offset, &mut path);
        path
    }
}

/// Descends into the child holding `offset`, extending `path`; true if one did.
fn find(node: &Node, offset: usize, path: &mut FieldPath) -> bool {
    let within =
        |span: &Range<usize>| span.start <= offset && offset < span.end.max(span.start + 1);
    match &node.children {
        Children::Leaf => false,
        Children::Table(entries) => {
            for (key, key_span, value) in entries {
                path.0.push(Segment::Key(key.clone()));
                if find(value, offset, path) || within(key_span) || within(&value.span) {
                    return true;
                }
                path.0.pop();
            }
            false
        }
        Children::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                path.0.push(Segment::Index(index));
                if find(item, offset, path) || within(&item.span) {
                    return true;
                }
                path.0.pop();
            }
            false
        }
    }
}

/// The 1-based line and column of byte `offset` in `text`.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, column)
}
