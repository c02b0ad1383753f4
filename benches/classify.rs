//! Criterion benchmark of the classifier on realistic mentions: the labelled sets under `tests/fixtures/lang/`
//! (every language) and one long post. `cargo bench --bench classify`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use earshot::classify::Classifier;

fn labelled_texts() -> Vec<String> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/lang");
    let mut texts = Vec::new();
    for entry in std::fs::read_dir(dir).expect("tests/fixtures/lang exists") {
        let path = entry.expect("readable directory").path();
        if path.extension().is_some_and(|e| e == "tsv") {
            let body = std::fs::read_to_string(&path).expect("readable fixture");
            let set = earshot::eval::read_tsv(&body).expect("fixture parses");
            texts.extend(set.into_iter().map(|e| e.text));
        }
    }
    texts
}

fn bench(c: &mut Criterion) {
    let classifier = Classifier::builtin();
    let texts = labelled_texts();
    let mut g = c.benchmark_group("classify");
    g.throughput(Throughput::Elements(texts.len() as u64));
    g.bench_function(format!("{} labelled mentions", texts.len()), |b| {
        b.iter(|| {
            texts
                .iter()
                .map(|t| classifier.classify(t).score)
                .sum::<f64>()
        })
    });
    let long = "Northwind lost my bag and nobody answers, still waiting 😡 ".repeat(200);
    g.throughput(Throughput::Bytes(long.len() as u64));
    g.bench_function("one 12 kB post", |b| {
        b.iter(|| classifier.classify(&long).score)
    });
    g.finish();
    c.bench_function("compile built-in packs", |b| b.iter(Classifier::builtin));
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}
criterion_main!(benches);
