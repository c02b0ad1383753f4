//! Rule packs from a support team's point of view: `earshot eval` on the labelled sets of every language (the
//! bar the rules must clear), extra pack files and language selection in the config.

mod common;
mod support;

use common::*;
use support::daemon::earshot;

/// Every labelled set under tests/fixtures/lang: (language, path).
fn labelled_sets() -> Vec<(String, String)> {
    let dir = format!("{}/tests/fixtures/lang", env!("CARGO_MANIFEST_DIR"));
    let mut sets: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "tsv"))
        .map(|p| {
            let lang = p.file_stem().unwrap().to_string_lossy().into_owned();
            (lang, p.to_string_lossy().into_owned())
        })
        .collect();
    sets.sort();
    sets
}

#[test]
fn every_language_clears_ninety_percent_on_its_labelled_set() {
    let dir = tempfile::tempdir().unwrap();
    let sets = labelled_sets();
    assert!(sets.iter().any(|(l, _)| l == "en"), "{sets:?}");
    for (lang, path) in sets {
        let (code, out, err) = earshot(
            dir.path(),
            &["eval", "--json", "--min-accuracy", "0.9", &path],
            &[],
            None,
        );
        let report: serde_json::Value =
            serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
        assert_eq!(code, 0, "{lang}: {err}\n{report:#}");
        let overall = &report["overall"];
        assert!(
            overall["n"].as_u64().unwrap() >= 60,
            "{lang}: at least 60 labelled mentions"
        );
        let c = &overall["confusion"];
        let complaints = c["tp"].as_u64().unwrap() + c["fn"].as_u64().unwrap();
        let n = overall["n"].as_u64().unwrap();
        assert!(
            complaints * 3 >= n && complaints * 3 <= 2 * n,
            "{lang}: about half complaints"
        );
        assert!(
            overall["accuracy"].as_f64().unwrap() >= 0.9,
            "{lang}: {report:#}"
        );
        assert!(
            report["languages"][lang.as_str()]["n"].as_u64().unwrap() >= 60,
            "{lang}: grouped by its lang column"
        );
    }
}

#[test]
fn eval_prints_a_confusion_matrix_and_the_misses_and_fails_below_the_bar() {
    let dir = tempfile::tempdir().unwrap();
    let tsv = dir.path().join("mine.tsv");
    std::fs::write(
        &tsv,
        "label\ttext\nnot_complaint\tthanks for the quick refund!\n1\tstill waiting for my refund\n\
         1\tthe lounge was closed again\n",
    )
    .unwrap();
    let tsv = tsv.to_string_lossy().into_owned();
    let (code, out, err) = earshot(dir.path(), &["eval", &tsv], &[], None);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("3 texts, 2 labelled complaint"), "{out}");
    assert!(out.contains("confusion matrix"), "{out}");
    assert!(
        out.contains("misclassified (1)") && out.contains("the lounge was closed again"),
        "{out}"
    );

    let (code, _, err) = earshot(
        dir.path(),
        &["eval", "--min-accuracy", "0.9", &tsv],
        &[],
        None,
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("accuracy below 0.9: overall 0.667"), "{err}");

    // A config rule fixes the miss.
    let config = write_config(
        dir.path(),
        "\n[[classify.rule]]\nname = \"northwind.lounge\"\nphrases = [\"lounge was closed\"]\nweight = -3.0\ntags = [\"lounge\"]\n",
    );
    let (code, out, err) = earshot(
        dir.path(),
        &["eval", "--config", &config, "--min-accuracy", "0.9", &tsv],
        &[],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("no text misclassified"), "{out}");

    let bad = dir.path().join("bad.tsv");
    std::fs::write(&bad, "text\tlabel\nhello\tperhaps\n").unwrap();
    let (code, _, err) = earshot(dir.path(), &["eval", &bad.to_string_lossy()], &[], None);
    assert_eq!(code, 1);
    assert!(err.contains("line 2: label \"perhaps\""), "{err}");
}

#[test]
fn pack_files_and_languages_are_configurable_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("id.toml"),
        "lang = \"id\"\nnegators = [\"tidak\"]\n[[rule]]\nname = \"id.kecewa\"\nweight = -2.5\nwords = [\"kecewa\"]\n",
    )
    .unwrap();
    let config = write_config(
        dir.path(),
        "\n[classify]\nlanguages = [\"en\"]\npack_files = [\"id.toml\"]\n",
    );
    let (code, out, err) = earshot(
        dir.path(),
        &["classify", "--json", "--config", &config, "saya kecewa"],
        &[],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["rules"][0], "id.kecewa", "{v}");
    assert_eq!(v["hits"][0]["start"], 5, "{v}");

    std::fs::write(
        dir.path().join("broken.toml"),
        "lang = \"id\"\nnegators = [\"  \"]\n",
    )
    .unwrap();
    let bad = write_config(
        dir.path(),
        "\n[classify]\nlanguages = [\"en\", \"xx\"]\npack_files = [\"missing.toml\", \"broken.toml\"]\n",
    );
    let (code, _, err) = earshot(dir.path(), &["check-config", "--config", &bad], &[], None);
    assert_eq!(code, 78, "{err}");
    assert!(
        err.contains("classify.languages[1]: no built-in pack for \"xx\""),
        "{err}"
    );
    assert!(
        err.contains("classify.pack_files[0]: cannot read") && err.contains("missing.toml"),
        "{err}"
    );
    assert!(
        err.contains("classify.pack_files[1]") && err.contains("negators"),
        "{err}"
    );
}
