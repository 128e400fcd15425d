//! What goes wrong with a manifest, and where.

use std::fmt;
use std::path::PathBuf;

/// One step of a field path: a key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// A table key.
    Key(String),
    /// An array index.
    Index(usize),
}

/// Where a field is in the manifest, e.g. `component[1].calls[0]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldPath(pub Vec<Segment>);

impl FieldPath {
    /// The whole manifest.
    pub fn root() -> Self {
        Self(Vec::new())
    }

    /// This path, then `key`.
    pub fn key(&self, key: &str) -> Self {
        let mut path = self.clone();
        path.0.push(Segment::Key(key.to_owned()));
        path
    }

    /// This path, then array element `index`.
    pub fn index(&self, index: usize) -> Self {
        let mut path = self.clone();
        path.0.push(Segment::Index(index));
        path
    }

    /// Whether this is the whole manifest.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (at, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(key) if at == 0 => write!(f, "{key}")?,
                Segment::Key(key) => write!(f, ".{key}")?,
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// One problem in a manifest: where it is and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The line (1-based) of the field, or of the nearest enclosing table when the field is
    /// missing.
    pub line: usize,
    /// The column (1-based, in characters) on that line.
    pub column: usize,
    /// The field, e.g. `component[1].calls[0]`; empty for a TOML syntax error or a problem
    /// with the whole file.
    pub field: FieldPath,
    /// What is wrong and what to do.
    pub message: String,
}

/// Why a manifest cannot be used.
#[derive(Debug)]
pub enum ManifestError {
    /// The file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file was read but is not a valid manifest.
    Invalid {
        /// The file's name as given to [`crate::load`] or [`crate::parse`].
        file: String,
        /// Every problem found, by line. A TOML syntax error or a field of the wrong shape
        /// stops the checks, so then only those are listed.
        diagnostics: Vec<Diagnostic>,
    },
}

impl ManifestError {
    /// The problems found (none for a read error).
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            ManifestError::Read { .. } => &[],
            ManifestError::Invalid { diagnostics, .. } => diagnostics,
        }
    }
}

impl fmt::Display for ManifestError {
    /// One line per problem: `FILE:LINE: FIELD: MESSAGE`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ManifestError::Read { path, source } => {
                write!(f, "{}: cannot read the manifest: {source}", path.display())
            }
            ManifestError::Invalid { file, diagnostics } => {
                for (at, diagnostic) in diagnostics.iter().enumerate() {
                    if at > 0 {
                        writeln!(f)?;
                    }
                    write!(f, "{file}:{}: ", diagnostic.line)?;
                    if !diagnostic.field.is_root() {
                        write!(f, "{}: ", diagnostic.field)?;
                    }
                    write!(f, "{}", diagnostic.message)?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ManifestError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ManifestError::Read { source, .. } => Some(source),
            ManifestError::Invalid { .. } => None,
        }
    }
}
