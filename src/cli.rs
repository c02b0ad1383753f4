//! Command-line parsing and the commands themselves. `anyhow` lives here, at the edge, and only here.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use earshot::classify::{Classifier, Verdict};
use earshot::config::{self, Config, ConfigError};
use earshot::{
    EXIT_CONFIG,
    clock::SystemClock,
    daemon,
    store::{Closing, Store},
};

/// earshot: hears complaints about your brands and escalates until someone answers.
#[derive(Parser)]
#[command(version, about, propagate_version = true)]
struct Cli {
    /// Config file.
    #[arg(
        long,
        short,
        global = true,
        env = "EARSHOT_CONFIG",
        default_value = "config/earshot.toml"
    )]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon.
    Run {
        /// Log format.
        #[arg(long, value_enum, default_value_t = LogFormat::Text, env = "EARSHOT_LOG_FORMAT")]
        log_format: LogFormat,
    },
    /// Validate the config and print what will be watched; exit 78 listing every problem.
    CheckConfig,
    /// Show the verdict and the rules that fired for TEXT ("-" reads one text per line from stdin).
    Classify {
        /// Print JSON (one object per line).
        #[arg(long)]
        json: bool,
        /// The text, or "-" for stdin.
        text: String,
    },
    /// Score the rules against a labelled TSV (columns text, label, optional lang): precision, recall, F1 and a
    /// confusion matrix per language and overall, then the misclassified texts with the rules that fired.
    Eval {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Exit 1 when overall accuracy, or any language's, is below this share (e.g. 0.9).
        #[arg(long, value_name = "SHARE")]
        min_accuracy: Option<f64>,
        /// The labelled TSV file ("-" for stdin).
        file: PathBuf,
    },
    /// List cases with their deadlines and state.
    Cases {
        /// Only open cases.
        #[arg(long)]
        open: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Acknowledge a case: close it, cancel its pending tiers and tell those already alerted.
    Ack {
        /// The case id (see `earshot cases`).
        case_id: i64,
        /// A note carried in the `case.closed` alert.
        #[arg(long)]
        note: Option<String>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// Parses arguments, runs the command, and maps failures to documented exit codes.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let explicit_config = std::env::args_os()
        .any(|a| a.to_string_lossy().starts_with("--config") || a == "-c")
        || std::env::var_os("EARSHOT_CONFIG").is_some();
    let result = match cli.command {
        Command::Run { log_format } => run(&cli.config, log_format),
        Command::CheckConfig => check_config(&cli.config),
        Command::Classify { json, text } => classify(&cli.config, explicit_config, json, &text),
        Command::Eval {
            json,
            min_accuracy,
            file,
        } => eval(&cli.config, explicit_config, json, min_accuracy, &file),
        Command::Cases { open, json } => cases(&cli.config, open, json),
        Command::Ack { case_id, note } => ack(&cli.config, case_id, note.as_deref()),
    };
    match result {
        Ok(code) => code,
        Err(e) => match e.downcast_ref::<ConfigError>() {
            Some(ce) => {
                eprint!("{ce}");
                ExitCode::from(EXIT_CONFIG as u8)
            }
            None => {
                eprintln!("earshot: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("EARSHOT_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

fn run(path: &Path, log_format: LogFormat) -> anyhow::Result<ExitCode> {
    init_logging(log_format);
    let config = config::load(path)?;
    for w in &config.warnings {
        tracing::warn!(line = w.line, key = %w.problem.path, "config: {}", w.problem.message);
    }
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let control = signals().context("installing signal handlers")?;
        daemon::run(config, Arc::new(SystemClock), control).await?;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// SIGTERM/SIGINT stop (a second one exits at once); SIGHUP reloads.
fn signals() -> std::io::Result<daemon::Control> {
    use tokio::signal::unix::{SignalKind, signal};
    let stop = tokio_util::sync::CancellationToken::new();
    let (reload_tx, reload) = tokio::sync::mpsc::channel(1);
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let token = stop.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
                _ = hup.recv() => {
                    // A reload already pending absorbs this one.
                    let _ = reload_tx.try_send(());
                    continue;
                }
            }
            if token.is_cancelled() {
                eprintln!("earshot: second stop signal; exiting now");
                std::process::exit(130);
            }
            tracing::info!("stop signal received");
            token.cancel();
        }
    });
    Ok(daemon::Control { stop, reload })
}

fn check_config(path: &Path) -> anyhow::Result<ExitCode> {
    let c = config::load(path)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{} is valid.", path.display())?;
    print_summary(&mut out, &c)?;
    for w in &c.warnings {
        let at = if w.line > 0 {
            format!("{}:{}:{}: ", path.display(), w.line, w.column)
        } else {
            String::new()
        };
        writeln!(
            out,
            "warning: {at}{}: {}",
            w.problem.path, w.problem.message
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print_summary(out: &mut impl Write, c: &Config) -> std::io::Result<()> {
    let d = humantime::format_duration;
    writeln!(
        out,
        "state: {}",
        c.daemon.state_dir.join("earshot.db").display()
    )?;
    if let Some(l) = c.daemon.listen {
        writeln!(out, "api: http://{l}")?;
    }
    writeln!(out, "brands:")?;
    for b in &c.brands {
        writeln!(
            out,
            "  {}: terms {:?}, exclude {:?}, own accounts {:?}",
            b.name, b.terms, b.exclude, b.accounts
        )?;
    }
    writeln!(out, "sources:")?;
    for s in &c.sources {
        writeln!(
            out,
            "  {} ({}): {} every {}{}{}",
            s.name,
            s.kind.name(),
            s.kind.describe(),
            d(s.every),
            s.limit
                .map(|l| format!(", at most {l} requests to its host"))
                .unwrap_or_default(),
            if s.kind.detects_replies() {
                "; the brand's replies close cases"
            } else {
                ""
            }
        )?;
    }
    writeln!(
        out,
        "sla: reply within {}; complaints older than {} open no case",
        d(c.sla.reply_within),
        d(c.sla.max_age)
    )?;
    for t in &c.sla.tiers {
        writeln!(
            out,
            "  at +{:<8} {:<17} -> {}",
            d(t.after).to_string(),
            t.event.as_str(),
            t.notify.join(", ")
        )?;
    }
    writeln!(out, "notifiers:")?;
    for n in &c.notifiers {
        writeln!(out, "  {}: {}", n.name, n.kind.describe())?;
    }
    let mut packs: Vec<&str> = c.classify.packs().iter().map(|p| p.lang.as_str()).collect();
    packs.dedup();
    writeln!(
        out,
        "classify: packs {}; {} config rules; complaint at score <= {}",
        packs.join(", "),
        c.classify.rules.len(),
        c.classify.complaint_at
    )
}

/// The config's classifier; the built-in one when no config was named and the default one does not exist.
fn classifier_for(path: &Path, explicit: bool) -> anyhow::Result<Classifier> {
    Ok(if explicit || path.exists() {
        config::load_classify(path)?.classifier()
    } else {
        Classifier::builtin()
    })
}

fn classify(path: &Path, explicit: bool, json: bool, text: &str) -> anyhow::Result<ExitCode> {
    let classifier = classifier_for(path, explicit)?;
    let mut out = std::io::stdout().lock();
    if text == "-" {
        for line in std::io::stdin().lock().lines() {
            let line = line.context("reading stdin")?;
            print_verdict(&mut out, &line, &classifier.classify(&line), json)?;
        }
    } else {
        print_verdict(&mut out, text, &classifier.classify(text), json)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print_verdict(out: &mut impl Write, text: &str, v: &Verdict, json: bool) -> std::io::Result<()> {
    if json {
        let mut obj = serde_json::to_value(v).expect("verdict serialises");
        obj["text"] = serde_json::Value::String(text.to_string());
        return writeln!(out, "{obj}");
    }
    let kind = if v.complaint {
        "COMPLAINT"
    } else {
        "not a complaint"
    };
    writeln!(
        out,
        "{kind}: {:?}, score {:.3}, lang {}",
        v.sentiment,
        v.score,
        v.lang.as_deref().unwrap_or("?")
    )?;
    if !v.tags.is_empty() {
        writeln!(out, "  tags: {}", v.tags.join(", "))?;
    }
    for h in &v.hits {
        writeln!(
            out,
            "  {:+.2}  {:<24} {:?} at {}..{}",
            h.weight, h.rule, h.text, h.start, h.end
        )?;
    }
    if v.hits.is_empty() {
        writeln!(out, "  (no rule fired)")?;
    }
    Ok(())
}

fn eval(
    path: &Path,
    explicit: bool,
    json: bool,
    min_accuracy: Option<f64>,
    file: &Path,
) -> anyhow::Result<ExitCode> {
    let classifier = classifier_for(path, explicit)?;
    let input = if file == Path::new("-") {
        std::io::read_to_string(std::io::stdin().lock()).context("reading stdin")?
    } else {
        let bytes =
            std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
        String::from_utf8_lossy(&bytes).into_owned()
    };
    let examples = earshot::eval::read_tsv(&input).with_context(|| file.display().to_string())?;
    let report = earshot::eval::evaluate(&classifier, &examples);
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer(&mut out, &report)?;
        writeln!(out)?;
    } else {
        print_report(&mut out, file, &report)?;
    }
    let below: Vec<String> = std::iter::once(("overall", &report.overall))
        .chain(report.languages.iter().map(|(l, s)| (l.as_str(), s)))
        .filter(|(_, s)| min_accuracy.is_some_and(|min| s.accuracy < min))
        .map(|(l, s)| format!("{l} {:.3}", s.accuracy))
        .collect();
    if below.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!(
        "earshot: accuracy below {}: {}",
        min_accuracy.unwrap_or_default(),
        below.join(", ")
    );
    Ok(ExitCode::FAILURE)
}

fn print_report(
    out: &mut impl Write,
    file: &Path,
    r: &earshot::eval::Report,
) -> std::io::Result<()> {
    let c = &r.overall.confusion;
    writeln!(
        out,
        "{}: {} texts, {} labelled complaint",
        file.display(),
        r.overall.n,
        c.tp + c.fn_
    )?;
    writeln!(
        out,
        "{:<8} {:>5} {:>9} {:>9} {:>7} {:>6}   {:>4} {:>4} {:>4} {:>4}",
        "lang", "n", "accuracy", "precision", "recall", "F1", "TP", "FP", "FN", "TN"
    )?;
    for (lang, s) in r
        .languages
        .iter()
        .map(|(l, s)| (l.as_str(), s))
        .chain([("overall", &r.overall)])
    {
        let c = &s.confusion;
        writeln!(
            out,
            "{lang:<8} {:>5} {:>9.3} {:>9.3} {:>7.3} {:>6.3}   {:>4} {:>4} {:>4} {:>4}",
            s.n, s.accuracy, s.precision, s.recall, s.f1, c.tp, c.fp, c.fn_, c.tn
        )?;
    }
    writeln!(
        out,
        "\nconfusion matrix (overall)      predicted complaint   predicted not"
    )?;
    writeln!(
        out,
        "  labelled complaint          {:>19}   {:>13}",
        c.tp, c.fn_
    )?;
    writeln!(
        out,
        "  labelled not_complaint      {:>19}   {:>13}",
        c.fp, c.tn
    )?;
    if r.misclassified.is_empty() {
        return writeln!(out, "\nno text misclassified");
    }
    writeln!(out, "\nmisclassified ({}):", r.misclassified.len())?;
    for m in &r.misclassified {
        let v = &m.verdict;
        let want = if m.expected_complaint {
            "complaint"
        } else {
            "not_complaint"
        };
        writeln!(
            out,
            "  line {} [{}] labelled {want}, score {:.3}: {}",
            m.line, m.lang, v.score, m.text
        )?;
        for h in &v.hits {
            writeln!(out, "      {:+.2}  {:<24} {:?}", h.weight, h.rule, h.text)?;
        }
        if v.hits.is_empty() {
            writeln!(out, "      (no rule fired)")?;
        }
    }
    Ok(())
}

fn open_store(path: &Path) -> anyhow::Result<Store> {
    let state_dir = config::load_state_dir(path)?;
    if !state_dir.join("earshot.db").exists() {
        anyhow::bail!(
            "no store at {} yet: has `earshot run` been started with this config?",
            state_dir.display()
        );
    }
    Ok(Store::open(&state_dir)?)
}

fn cases(path: &Path, open: bool, json: bool) -> anyhow::Result<ExitCode> {
    let rows = open_store(path)?.cases(open)?;
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &rows)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        writeln!(out, "no {}cases", if open { "open " } else { "" })?;
    }
    let now = chrono::Utc::now();
    for r in rows {
        let due = if r.state == "open" {
            let left = r.deadline - now;
            if left.num_seconds() >= 0 {
                format!("due in {}m", left.num_minutes())
            } else {
                format!("OVERDUE {}m", -left.num_minutes())
            }
        } else if let (Some(by), Some(at)) = (&r.replied_by, r.replied_at) {
            // The figure the SLA is about: how long the customer waited for the brand's answer.
            format!("replied by {by} in {}m", (at - r.posted_at).num_minutes())
        } else {
            format!("closed ({})", r.close_reason.as_deref().unwrap_or("?"))
        };
        let text: String = r.text.replace('\n', " ").chars().take(70).collect();
        writeln!(
            out,
            "#{:<5} {:<16} {:<12} {:<12} deadline {}  {}  {}: {}",
            r.id,
            due,
            r.brand,
            r.source,
            r.deadline.format("%Y-%m-%d %H:%M:%SZ"),
            r.url.as_deref().unwrap_or("-"),
            r.author.as_deref().unwrap_or("?"),
            text
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn ack(path: &Path, case_id: i64, note: Option<&str>) -> anyhow::Result<ExitCode> {
    let store = open_store(path)?;
    match store.close_case(case_id, Closing::Ack { note }, chrono::Utc::now()) {
        Ok(c) => {
            let who = if c.notified.is_empty() {
                "nobody had been alerted yet".to_string()
            } else {
                c.notified.join(", ")
            };
            println!(
                "case {} closed; case.closed queued for: {who}; {} pending tier(s) cancelled",
                c.case_id, c.cancelled
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("earshot: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}
