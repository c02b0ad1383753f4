//! The meaning stage: typed values from the raw config, with every problem collected (not just the first).

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use super::raw::{self, RawConfig};
use super::{
    BrandSpec, ClassifySettings, Config, Daemon, Delivery, KindCtx, NotifierSpec, Problem, Sla,
    SourceSpec, Tier, default_user_agent, values,
};
use crate::alert::Event;
use crate::classify::{Classifier, DEFAULT_COMPLAINT_AT, Pack};
use crate::notify::NotifierKind;
use crate::source::SourceKind;

/// Turns the raw config into typed values, pushing every problem found.
pub(super) fn check(
    file: &Path,
    base_dir: &Path,
    raw: RawConfig,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<Problem>,
) -> Config {
    let mut dur =
        |path: &str, v: &Option<String>, default: Duration, problems: &mut Vec<Problem>| match v {
            None => default,
            Some(t) => values::duration(t).unwrap_or_else(|e| {
                problems.push(Problem::new(path, e));
                default
            }),
        };
    let daemon = check_daemon(base_dir, &raw.daemon, problems, &mut dur);
    let brands = check_brands(&raw.brand, problems);
    let mut sources = Vec::new();
    for (i, s) in raw.source.iter().enumerate() {
        let path = format!("source[{i}]");
        let every = dur(
            &format!("{path}.every"),
            &s.every,
            Duration::from_secs(300),
            problems,
        );
        if every < Duration::from_secs(1) {
            problems.push(Problem::new(format!("{path}.every"), "must be at least 1s"));
        }
        let timeout = dur(
            &format!("{path}.timeout"),
            &s.timeout,
            Duration::from_secs(30),
            problems,
        );
        let max_body = match &s.max_body {
            None => daemon.max_body,
            Some(t) => values::size(t).unwrap_or_else(|e| {
                problems.push(Problem::new(format!("{path}.max_body"), e));
                daemon.max_body
            }),
        };
        let limit = s.rate_limit.as_deref().and_then(|t| {
            crate::http::RateLimit::parse(t)
                .map_err(|e| problems.push(Problem::new(format!("{path}.rate_limit"), e)))
                .ok()
        });
        let name = required_name(&s.name, &path, problems);
        let Some(kind) = s.kind.as_deref() else {
            problems.push(Problem::new(
                path.clone(),
                format!(
                    "missing `kind` (one of: {})",
                    crate::source::KINDS.join(", ")
                ),
            ));
            continue;
        };
        let mut ctx = KindCtx {
            path: path.clone(),
            base_dir,
            problems,
        };
        if let Some(kind) = SourceKind::from_config(kind, &s.options, &mut ctx) {
            sources.push(SourceSpec {
                name,
                every,
                timeout,
                max_body,
                limit: limit.or(kind.default_limit()),
                kind,
            });
        }
    }
    duplicates(
        raw.source.iter().map(|s| s.name.as_deref().unwrap_or("")),
        "source",
        problems,
    );
    let mut notifiers = Vec::new();
    for (i, n) in raw.notify.iter().enumerate() {
        let path = format!("notify[{i}]");
        let name = required_name(&n.name, &path, problems);
        let Some(kind) = n.kind.as_deref() else {
            problems.push(Problem::new(
                path.clone(),
                "missing `kind` (one of: email, webhook, file)",
            ));
            continue;
        };
        let mut ctx = KindCtx {
            path: path.clone(),
            base_dir,
            problems,
        };
        if let Some(kind) = NotifierKind::from_config(kind, &n.options, &mut ctx) {
            notifiers.push(NotifierSpec { name, kind });
        }
    }
    duplicates(
        raw.notify.iter().map(|n| n.name.as_deref().unwrap_or("")),
        "notify",
        problems,
    );
    let sla = check_sla(&raw, &notifiers, &sources, problems, warnings, &mut dur);
    let classify = check_classify(base_dir, &raw, problems);
    let delivery = Delivery {
        retry_initial: dur(
            "delivery.retry_initial",
            &raw.delivery.retry_initial,
            Duration::from_secs(2),
            problems,
        ),
        retry_max: dur(
            "delivery.retry_max",
            &raw.delivery.retry_max,
            Duration::from_secs(60),
            problems,
        ),
        timeout: dur(
            "delivery.timeout",
            &raw.delivery.timeout,
            Duration::from_secs(30),
            problems,
        ),
    };
    if brands.is_empty() {
        warnings.push(Problem::new(
            "brand",
            "no [[brand]] is configured: every mention will be dropped",
        ));
    }
    if sources.is_empty() {
        warnings.push(Problem::new(
            "source",
            "no [[source]] is configured: nothing will be polled",
        ));
    }
    if sources.iter().any(|s| s.kind.detects_replies()) {
        for (i, b) in brands.iter().enumerate() {
            if b.accounts.is_empty() {
                warnings.push(Problem::new(
                    format!("brand[{i}].accounts"),
                    format!(
                        "brand {:?} lists no accounts: its replies cannot close cases, only `earshot ack` can",
                        b.name
                    ),
                ));
            }
        }
    }
    Config {
        file: file.to_path_buf(),
        daemon,
        brands,
        sources,
        sla,
        notifiers,
        classify,
        delivery,
        warnings: vec![],
    }
}

type DurFn<'a> = dyn FnMut(&str, &Option<String>, Duration, &mut Vec<Problem>) -> Duration + 'a;

fn check_daemon(
    base_dir: &Path,
    d: &raw::RawDaemon,
    problems: &mut Vec<Problem>,
    dur: &mut DurFn<'_>,
) -> Daemon {
    let listen = d.listen.as_deref().and_then(|l| {
        l.parse::<SocketAddr>()
            .map_err(|_| {
                problems.push(Problem::new(
                    "daemon.listen",
                    format!("{l:?} is not an address like \"127.0.0.1:8787\""),
                ))
            })
            .ok()
    });
    let max_body = d.max_body.as_deref().map_or(10 << 20, |t| {
        values::size(t).unwrap_or_else(|e| {
            problems.push(Problem::new("daemon.max_body", e));
            10 << 20
        })
    });
    Daemon {
        state_dir: values::resolve(base_dir, d.state_dir.as_deref().unwrap_or("state")),
        listen,
        user_agent: d.user_agent.clone().unwrap_or_else(default_user_agent),
        per_host_interval: dur(
            "daemon.per_host_interval",
            &d.per_host_interval,
            Duration::from_secs(1),
            problems,
        ),
        max_body,
    }
}

fn check_brands(raw: &[raw::RawBrand], problems: &mut Vec<Problem>) -> Vec<BrandSpec> {
    let mut brands = Vec::new();
    for (i, b) in raw.iter().enumerate() {
        let path = format!("brand[{i}]");
        let name = required_name(&b.name, &path, problems);
        if b.terms.is_empty() {
            problems.push(Problem::new(
                format!("{path}.terms"),
                "a brand needs at least one term",
            ));
        }
        for (j, t) in b.terms.iter().chain(&b.exclude).enumerate() {
            if crate::text::normalize(t).tokens.is_empty() {
                let key = if j < b.terms.len() {
                    format!("terms[{j}]")
                } else {
                    format!("exclude[{}]", j - b.terms.len())
                };
                problems.push(Problem::new(
                    format!("{path}.{key}"),
                    format!("{t:?} has no word in it"),
                ));
            }
        }
        let accounts = b
            .accounts
            .iter()
            .map(|a| a.trim_start_matches('@').to_lowercase())
            .collect();
        brands.push(BrandSpec {
            name,
            terms: b.terms.clone(),
            exclude: b.exclude.clone(),
            accounts,
        });
    }
    duplicates(
        raw.iter().map(|b| b.name.as_deref().unwrap_or("")),
        "brand",
        problems,
    );
    brands
}

fn check_sla(
    raw: &RawConfig,
    notifiers: &[NotifierSpec],
    sources: &[SourceSpec],
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<Problem>,
    dur: &mut DurFn<'_>,
) -> Sla {
    let reply_within = dur(
        "sla.reply_within",
        &raw.sla.reply_within,
        Duration::from_secs(3600),
        problems,
    );
    let max_age = dur(
        "sla.max_age",
        &raw.sla.max_age,
        Duration::from_secs(24 * 3600),
        problems,
    );
    if reply_within.is_zero() {
        problems.push(Problem::new("sla.reply_within", "must be longer than 0s"));
    }
    let mut tiers = Vec::new();
    for (i, t) in raw.sla.tier.iter().enumerate() {
        let path = format!("sla.tier[{i}]");
        let Some(after_text) = &t.after else {
            problems.push(Problem::new(
                path,
                "missing `after` (offset from the post's time, e.g. \"45m\")",
            ));
            continue;
        };
        let after = dur(
            &format!("{path}.after"),
            &Some(after_text.clone()),
            Duration::ZERO,
            problems,
        );
        if t.notify.is_empty() {
            problems.push(Problem::new(
                format!("{path}.notify"),
                "a tier must notify at least one [[notify]] name",
            ));
        }
        for (j, n) in t.notify.iter().enumerate() {
            if !notifiers.iter().any(|x| &x.name == n) {
                let known: Vec<&str> = notifiers.iter().map(|x| x.name.as_str()).collect();
                problems.push(Problem::new(
                    format!("{path}.notify[{j}]"),
                    format!(
                        "unknown notifier {n:?} (known: {})",
                        if known.is_empty() {
                            "none".into()
                        } else {
                            known.join(", ")
                        }
                    ),
                ));
            }
        }
        tiers.push(Tier {
            after,
            event: Event::for_offset(after, reply_within),
            notify: t.notify.clone(),
        });
    }
    tiers.sort_by_key(|t| t.after);
    if tiers.is_empty() && !sources.is_empty() {
        warnings.push(Problem::new(
            "sla.tier",
            "no [[sla.tier]]: complaints open cases but nobody is alerted",
        ));
    }
    for (i, s) in sources.iter().enumerate() {
        if s.every >= reply_within {
            warnings.push(Problem::new(
                format!("source[{i}].every"),
                format!("polls every {}, not more often than the reply deadline of {}: complaints may be seen after their deadline",
                    humantime::format_duration(s.every), humantime::format_duration(reply_within)),
            ));
        }
    }
    Sla {
        reply_within,
        max_age,
        tiers,
    }
}

pub(super) fn check_classify(
    base_dir: &Path,
    raw: &RawConfig,
    problems: &mut Vec<Problem>,
) -> ClassifySettings {
    let c = &raw.classify;
    let complaint_at = c.complaint_at.unwrap_or(DEFAULT_COMPLAINT_AT);
    if !(-1.0..=0.0).contains(&complaint_at) {
        problems.push(Problem::new(
            "classify.complaint_at",
            "must be between -1.0 and 0.0",
        ));
    }
    let builtin = crate::classify::pack::builtin_languages();
    let languages: Vec<String> = match &c.languages {
        None => builtin.iter().map(|l| l.to_string()).collect(),
        Some(list) => {
            for (i, l) in list.iter().enumerate() {
                if !builtin.contains(&l.as_str()) {
                    problems.push(Problem::new(
                        format!("classify.languages[{i}]"),
                        format!(
                            "no built-in pack for {l:?}; there are {}",
                            builtin.join(", ")
                        ),
                    ));
                }
            }
            list.clone()
        }
    };
    let mut extra_packs = Vec::new();
    for (i, f) in c.pack_files.iter().enumerate() {
        let path = values::resolve(base_dir, f);
        match Pack::load(&path) {
            Ok(p) => extra_packs.push(p),
            Err(e) => problems.push(Problem::new(format!("classify.pack_files[{i}]"), e)),
        }
    }
    let settings = ClassifySettings {
        complaint_at,
        rules: c.rule.clone(),
        languages,
        extra_packs,
    };
    if let Err(rule_problems) = Classifier::with_packs(&settings.packs(), &c.rule, complaint_at) {
        for p in rule_problems {
            problems.push(Problem::new(
                format!("classify.rule[{}].{}", p.index, p.field),
                p.message,
            ));
        }
    }
    settings
}

fn required_name(name: &Option<String>, path: &str, problems: &mut Vec<Problem>) -> String {
    match name.as_deref().map(str::trim) {
        Some(n) if !n.is_empty() => n.to_string(),
        _ => {
            problems.push(Problem::new(format!("{path}.name"), "missing `name`"));
            String::new()
        }
    }
}

fn duplicates<'a>(
    names: impl Iterator<Item = &'a str>,
    section: &str,
    problems: &mut Vec<Problem>,
) {
    let mut seen = std::collections::HashMap::new();
    for (i, n) in names.enumerate() {
        if n.is_empty() {
            continue;
        }
        if let Some(first) = seen.insert(n, i) {
            seen.insert(n, first);
            problems.push(Problem::new(
                format!("{section}[{i}].name"),
                format!("duplicate {section} name {n:?} (first used by {section}[{first}])"),
            ));
        }
    }
}
