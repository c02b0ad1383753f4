//! earshot's side of `benches/vs_vader.sh`: classifies the texts of a rated TSV (`id<TAB>mean rating<TAB>text`,
//! as in VADER's `tweets_GroundTruth.txt`) single-threaded, several rounds, and prints one JSON object: median
//! texts/second (with and without language detection) and precision/recall/F1 of "negative" against the ratings
//! (negative = mean rating < 0). "Without detection" is `classify_in` with no language given, the rules alone;
//! the other figure adds whatlang language detection (`classify`). Run with `cargo bench --bench vs_vader -- FILE`.

use std::time::Instant;

use earshot::classify::{Classifier, Sentiment};

const ROUNDS: usize = 15;

fn main() {
    let Some(path) = std::env::args().skip(1).find(|a| !a.starts_with("--")) else {
        eprintln!("usage: cargo bench --bench vs_vader -- RATED.tsv");
        std::process::exit(2);
    };
    let raw = std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    let rows: Vec<(f64, String)> = String::from_utf8_lossy(&raw)
        .lines()
        .filter_map(|l| {
            let mut f = l.trim_end_matches('\r').splitn(3, '\t');
            let _id = f.next()?;
            let rating = f.next()?.trim().parse().ok()?;
            Some((rating, f.next()?.to_string()))
        })
        .collect();
    assert!(!rows.is_empty(), "no rated rows in {path}");
    let built = Instant::now();
    let c = Classifier::builtin();
    let build_ms = built.elapsed().as_secs_f64() * 1e3;

    let texts: Vec<&str> = rows.iter().map(|(_, t)| t.as_str()).collect();
    let full = median_rate(&texts, |t| c.classify(t).score);
    let rules_only = median_rate(&texts, |t| c.classify_in(t, None).score);

    let (mut tp, mut fp, mut fn_) = (0usize, 0usize, 0usize);
    for (rating, text) in &rows {
        let predicted = c.classify(text).sentiment == Sentiment::Negative;
        match (*rating < 0.0, predicted) {
            (true, true) => tp += 1,
            (false, true) => fp += 1,
            (true, false) => fn_ += 1,
            _ => {}
        }
    }
    let precision = tp as f64 / (tp + fp).max(1) as f64;
    let recall = tp as f64 / (tp + fn_).max(1) as f64;
    let f1 = if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    };
    println!(
        "{{\"texts\":{},\"rounds\":{ROUNDS},\"build_ms\":{build_ms:.1},\"texts_per_second\":{full:.0},\
         \"texts_per_second_without_detection\":{rules_only:.0},\"precision\":{precision:.4},\"recall\":{recall:.4},\
         \"f1\":{f1:.4}}}",
        rows.len()
    );
}

/// Median over [`ROUNDS`] passes (after one warm-up pass) of texts classified per second.
fn median_rate(texts: &[&str], f: impl Fn(&str) -> f64) -> f64 {
    let mut sink = 0.0;
    for t in texts {
        sink += f(t);
    }
    let mut rates: Vec<f64> = (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            for t in texts {
                sink += f(t);
            }
            texts.len() as f64 / start.elapsed().as_secs_f64()
        })
        .collect();
    std::hint::black_box(sink);
    rates.sort_by(f64::total_cmp);
    rates[ROUNDS / 2]
}
