//! Config problems and how they are reported: every problem names the file, the line and column, the key path and
//! the reason, and all of them are reported at once.

use std::fmt;
use std::path::{Path, PathBuf};

use toml::de::{DeTable, DeValue};

/// One thing wrong with a config, before it is located in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Key path in TOML terms, e.g. `source[1].every` or `sla.tier[0].notify[1]`.
    pub path: String,
    /// What is wrong and, where it helps, how to fix it.
    pub message: String,
}

impl Problem {
    /// A problem at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// A problem placed at a line and column of the config file (1-based; 0 when the key is absent from the file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// 1-based line, or 0 when the problem concerns a key that is missing.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// The problem itself.
    pub problem: Problem,
}

/// Why a config could not be loaded: the file, and every problem found in it.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    /// The config file.
    pub file: PathBuf,
    /// Every problem, in file order.
    pub problems: Vec<Located>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        writeln!(
            f,
            "{}: {} problem{} in the config",
            self.file.display(),
            n,
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            let path = if p.problem.path.is_empty() {
                String::new()
            } else {
                format!("{}: ", p.problem.path)
            };
            if p.line > 0 {
                writeln!(
                    f,
                    "{}:{}:{}: {}{}",
                    self.file.display(),
                    p.line,
                    p.column,
                    path,
                    p.problem.message
                )?;
            } else {
                writeln!(f, "{}: {}{}", self.file.display(), path, p.problem.message)?;
            }
        }
        Ok(())
    }
}

impl ConfigError {
    /// A config error that is about the file as a whole (unreadable, not TOML).
    pub fn whole_file(
        file: &Path,
        line: usize,
        column: usize,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError {
            file: file.to_path_buf(),
            problems: vec![Located {
                line,
                column,
                problem: Problem::new("", message),
            }],
        }
    }
}

/// Finds where key paths stand in the source text, so problems found after deserialising can name a line.
pub struct Locator<'a> {
    text: &'a str,
    root: Option<DeTable<'a>>,
}

impl<'a> Locator<'a> {
    /// Parses `text` once for spans; a text that does not parse locates nothing.
    pub fn new(text: &'a str) -> Locator<'a> {
        let root = DeTable::parse(text).ok().map(|t| t.into_inner());
        Locator { text, root }
    }

    /// Places a problem at its key (or its nearest existing parent) in the text.
    pub fn locate(&self, problem: Problem) -> Located {
        let (line, column) = self
            .span_start(&problem.path)
            .map(|o| line_col(self.text, o))
            .unwrap_or((0, 0));
        Located {
            line,
            column,
            problem,
        }
    }

    /// The key path whose value contains byte `offset` (for serde's type errors, which name no key). Every
    /// table is searched: the span of a `[[table]]` item covers only its header, not its keys.
    pub fn path_at(&self, offset: usize) -> Option<String> {
        fn in_table(table: &DeTable<'_>, offset: usize, path: &str) -> Option<String> {
            table.iter().find_map(|(key, value)| {
                let here = if path.is_empty() {
                    key.get_ref().to_string()
                } else {
                    format!("{path}.{}", key.get_ref())
                };
                in_value(value, offset, here)
            })
        }
        fn in_value(
            value: &toml::Spanned<DeValue<'_>>,
            offset: usize,
            path: String,
        ) -> Option<String> {
            match value.get_ref() {
                DeValue::Table(t) => in_table(t, offset, &path),
                DeValue::Array(items) => items
                    .iter()
                    .enumerate()
                    .find_map(|(i, v)| in_value(v, offset, format!("{path}[{i}]"))),
                _ => value.span().contains(&offset).then_some(path),
            }
        }
        in_table(self.root.as_ref()?, offset, "")
    }

    fn span_start(&self, path: &str) -> Option<usize> {
        let root = self.root.as_ref()?;
        let mut best = None;
        let mut table = Some(root);
        let mut value: Option<&toml::Spanned<DeValue<'_>>> = None;
        for seg in segments(path) {
            match seg {
                Segment::Key(k) => {
                    let t = match (table, value.map(|v| v.get_ref())) {
                        (Some(t), None) => t,
                        (_, Some(DeValue::Table(t))) => t,
                        _ => break,
                    };
                    let Some((key, v)) = t.iter().find(|(key, _)| key.get_ref().as_ref() == k)
                    else {
                        break;
                    };
                    best = Some(key.span().start);
                    value = Some(v);
                    table = None;
                }
                Segment::Index(i) => {
                    let Some(DeValue::Array(items)) = value.map(|v| v.get_ref()) else {
                        break;
                    };
                    let Some(item) = items.get(i) else { break };
                    best = Some(item.span().start);
                    value = Some(item);
                }
            }
        }
        best
    }
}

enum Segment<'p> {
    Key(&'p str),
    Index(usize),
}

/// Splits `a.b[2].c` into keys and indices.
fn segments(path: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (key, rest) = part.split_once('[').map_or((part, ""), |(k, r)| (k, r));
        if !key.is_empty() {
            out.push(Segment::Key(key));
        }
        for idx in rest.split('[') {
            if let Ok(i) = idx.trim_end_matches(']').parse() {
                out.push(Segment::Index(i));
            }
        }
    }
    out
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "[daemon]\nstate_dir = \"s\"\n\n[[source]]\nname = \"a\"\n\n[[source]]\nname = \"b\"\nevery = \"x\"\n\n[sla]\n[[sla.tier]]\nnotify = [\"one\", \"two\"]\n";

    #[test]
    fn locates_nested_keys_and_array_items() {
        let loc = Locator::new(DOC);
        let at = |p: &str| {
            let l = loc.locate(Problem::new(p, "m"));
            (l.line, l.column)
        };
        assert_eq!(at("daemon.state_dir"), (2, 1));
        assert_eq!(at("source[1].every"), (9, 1));
        assert_eq!(at("source[0].name"), (5, 1));
        assert_eq!(at("sla.tier[0].notify[1]"), (13, 18));
        // A missing key falls back to its nearest parent.
        let (line, _) = at("source[1].url");
        assert!((7..=8).contains(&line), "line {line}");
        assert_eq!(at("nothing.here"), (0, 0));
        let offset = DOC.find("\"x\"").unwrap();
        assert_eq!(loc.path_at(offset).as_deref(), Some("source[1].every"));
    }

    #[test]
    fn display_names_file_line_and_key() {
        let err = ConfigError {
            file: PathBuf::from("c.toml"),
            problems: vec![Located {
                line: 3,
                column: 7,
                problem: Problem::new("source[0].every", "bad duration"),
            }],
        };
        let text = err.to_string();
        assert!(
            text.contains("c.toml:3:7: source[0].every: bad duration"),
            "{text}"
        );
    }
}
