//! Scoring the classifier against a labelled set, for support teams tuning their rules (`earshot eval`).
//!
//! The set is a TSV file with a header row naming its columns: `text` and `label` (`complaint`/`not_complaint`,
//! or `1`/`0`, or `true`/`false`) are required, `lang` is optional. Every other column is ignored.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::classify::{Classifier, Verdict};

/// One labelled text.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    /// 1-based line number in the file.
    pub line: usize,
    /// The text.
    pub text: String,
    /// Is it a complaint?
    pub complaint: bool,
    /// Its language, when the file says.
    pub lang: Option<String>,
}

/// A labelled set that cannot be read.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EvalError {
    /// The header lacks a required column.
    #[error(
        "line 1: the header must name a `{0}` column (tab-separated: text, label and optionally lang)"
    )]
    MissingColumn(&'static str),
    /// A row is unusable.
    #[error("line {line}: {reason}")]
    BadRow {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// No rows at all.
    #[error("no labelled rows")]
    Empty,
}

/// Reads a labelled TSV; every row must parse (the first bad row is reported with its line number).
pub fn read_tsv(input: &str) -> Result<Vec<Example>, EvalError> {
    let mut lines = input
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((_, header)) = lines.next() else {
        return Err(EvalError::Empty);
    };
    let cols: Vec<String> = header
        .split('\t')
        .map(|c| c.trim().to_ascii_lowercase())
        .collect();
    let find = |name: &'static str| cols.iter().position(|c| c == name);
    let text_at = find("text").ok_or(EvalError::MissingColumn("text"))?;
    let label_at = find("label").ok_or(EvalError::MissingColumn("label"))?;
    let lang_at = find("lang");
    let mut out = Vec::new();
    for (i, row) in lines {
        let line = i + 1;
        let fields: Vec<&str> = row.split('\t').collect();
        let field = |at: usize| fields.get(at).copied().map(str::trim);
        let bad = |reason: String| EvalError::BadRow { line, reason };
        let text = field(text_at)
            .ok_or_else(|| bad(format!("expected {} tab-separated fields", cols.len())))?;
        let label = field(label_at)
            .ok_or_else(|| bad(format!("expected {} tab-separated fields", cols.len())))?;
        let complaint = match label.to_ascii_lowercase().as_str() {
            "complaint" | "1" | "true" | "yes" => true,
            "not_complaint" | "not complaint" | "0" | "false" | "no" => false,
            other => {
                return Err(bad(format!(
                    "label {other:?} is not complaint/not_complaint (or 1/0)"
                )));
            }
        };
        let lang = lang_at
            .and_then(field)
            .filter(|l| !l.is_empty())
            .map(crate::lang::primary);
        out.push(Example {
            line,
            text: text.to_string(),
            complaint,
            lang,
        });
    }
    if out.is_empty() {
        return Err(EvalError::Empty);
    }
    Ok(out)
}

/// Counts of a binary confusion matrix, "complaint" being the positive class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Confusion {
    /// Complaints recognised.
    pub tp: usize,
    /// Non-complaints taken for complaints.
    pub fp: usize,
    /// Complaints missed.
    #[serde(rename = "fn")]
    pub fn_: usize,
    /// Non-complaints left alone.
    pub tn: usize,
}

impl Confusion {
    fn add(&mut self, expected: bool, predicted: bool) {
        match (expected, predicted) {
            (true, true) => self.tp += 1,
            (false, true) => self.fp += 1,
            (true, false) => self.fn_ += 1,
            (false, false) => self.tn += 1,
        }
    }

    /// Number of texts.
    pub fn n(&self) -> usize {
        self.tp + self.fp + self.fn_ + self.tn
    }

    /// Share of texts classified right.
    pub fn accuracy(&self) -> f64 {
        ratio(self.tp + self.tn, self.n())
    }

    /// Share of predicted complaints that are complaints (1 when none was predicted).
    pub fn precision(&self) -> f64 {
        if self.tp + self.fp == 0 {
            1.0
        } else {
            ratio(self.tp, self.tp + self.fp)
        }
    }

    /// Share of complaints recognised (1 when there were none).
    pub fn recall(&self) -> f64 {
        if self.tp + self.fn_ == 0 {
            1.0
        } else {
            ratio(self.tp, self.tp + self.fn_)
        }
    }

    /// Harmonic mean of precision and recall.
    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// Scores as printed and serialised.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Scores {
    /// Texts.
    pub n: usize,
    /// See [`Confusion::accuracy`].
    pub accuracy: f64,
    /// See [`Confusion::precision`].
    pub precision: f64,
    /// See [`Confusion::recall`].
    pub recall: f64,
    /// See [`Confusion::f1`].
    pub f1: f64,
    /// The matrix.
    pub confusion: Confusion,
}

impl From<Confusion> for Scores {
    fn from(c: Confusion) -> Scores {
        let r = |x: f64| (x * 10_000.0).round() / 10_000.0;
        Scores {
            n: c.n(),
            accuracy: r(c.accuracy()),
            precision: r(c.precision()),
            recall: r(c.recall()),
            f1: r(c.f1()),
            confusion: c,
        }
    }
}

/// One text the classifier got wrong.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Miss {
    /// Line in the file.
    pub line: usize,
    /// The text.
    pub text: String,
    /// Its language (the file's, else detected).
    pub lang: String,
    /// The label: complaint or not.
    pub expected_complaint: bool,
    /// What the classifier said, with the rules that fired.
    pub verdict: Verdict,
}

/// The whole evaluation.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    /// Over every text.
    pub overall: Scores,
    /// Per language (the file's `lang` column, else the detected language, else `?`).
    pub languages: BTreeMap<String, Scores>,
    /// Texts classified wrong, in file order.
    pub misclassified: Vec<Miss>,
}

/// Classifies every example and scores the result.
pub fn evaluate(classifier: &Classifier, examples: &[Example]) -> Report {
    let mut overall = Confusion::default();
    let mut by_lang: BTreeMap<String, Confusion> = BTreeMap::new();
    let mut misclassified = Vec::new();
    for ex in examples {
        let verdict = classifier.classify_in(&ex.text, ex.lang.as_deref());
        let lang = verdict.lang.as_deref().unwrap_or("?").to_string();
        overall.add(ex.complaint, verdict.complaint);
        by_lang
            .entry(lang.clone())
            .or_default()
            .add(ex.complaint, verdict.complaint);
        if verdict.complaint != ex.complaint {
            misclassified.push(Miss {
                line: ex.line,
                text: ex.text.clone(),
                lang,
                expected_complaint: ex.complaint,
                verdict,
            });
        }
    }
    Report {
        overall: overall.into(),
        languages: by_lang.into_iter().map(|(l, c)| (l, c.into())).collect(),
        misclassified,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_labels_in_every_spelling_and_reports_bad_rows() {
        let set = read_tsv("lang\ttext\tlabel\nen\tstill waiting\tcomplaint\n\nms\tterima kasih\t0\n\ttoo late\t1\n")
            .unwrap();
        assert_eq!(set.len(), 3);
        assert_eq!(
            (set[0].line, set[0].complaint, set[0].lang.as_deref()),
            (2, true, Some("en"))
        );
        assert_eq!(
            (set[1].line, set[1].complaint, set[1].lang.as_deref()),
            (4, false, Some("ms"))
        );
        assert_eq!(set[2].lang, None);
        assert_eq!(
            read_tsv("text\tlabel\nhello\tmaybe\n")
                .unwrap_err()
                .to_string(),
            "line 2: label \"maybe\" is not complaint/not_complaint (or 1/0)"
        );
        assert_eq!(
            read_tsv("text\tlabel\nhello\n").unwrap_err(),
            EvalError::BadRow {
                line: 2,
                reason: "expected 2 tab-separated fields".into()
            }
        );
        assert_eq!(
            read_tsv("text\tclass\nx\t1\n").unwrap_err(),
            EvalError::MissingColumn("label")
        );
        assert_eq!(read_tsv("text\tlabel\n").unwrap_err(), EvalError::Empty);
    }

    #[test]
    fn scores_follow_the_confusion_matrix() {
        let c = Confusion {
            tp: 8,
            fp: 2,
            fn_: 4,
            tn: 6,
        };
        assert_eq!(c.n(), 20);
        assert!((c.accuracy() - 0.7).abs() < 1e-9);
        assert!((c.precision() - 0.8).abs() < 1e-9);
        assert!((c.recall() - 8.0 / 12.0).abs() < 1e-9);
        assert!((c.f1() - 2.0 * 0.8 * (8.0 / 12.0) / (0.8 + 8.0 / 12.0)).abs() < 1e-9);
        assert_eq!(
            Confusion::default().f1(),
            1.0,
            "nothing to find, nothing claimed"
        );
    }

    #[test]
    fn evaluation_groups_by_language_and_lists_misses_with_their_rules() {
        let set = read_tsv(
            "text\tlabel\tlang\nstill waiting for my refund\tcomplaint\ten\nthanks, great service\t0\ten\n\
             the app is fine\tcomplaint\ten-GB\n",
        )
        .unwrap();
        let r = evaluate(&Classifier::builtin(), &set);
        assert_eq!(
            r.overall.confusion,
            Confusion {
                tp: 1,
                fp: 0,
                fn_: 1,
                tn: 1
            }
        );
        assert_eq!(r.languages.keys().collect::<Vec<_>>(), ["en"]);
        assert_eq!(r.misclassified.len(), 1);
        assert_eq!(r.misclassified[0].line, 4);
        assert!(
            r.misclassified[0]
                .verdict
                .rules
                .iter()
                .any(|n| n.starts_with("en."))
        );
    }
}
