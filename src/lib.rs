//! earshot keeps a company within earshot of its customers: it polls feeds and forums for mentions of the brands
//! it watches, hears the complaints among them with keyword rules a support team can read, gives each complaint a
//! reply deadline, and escalates by email and webhook until someone answers.
//!
//! Data flows one way, and each module owns one step:
//!
//! - [`config`] reads and validates the TOML (every problem located by file, line and key);
//! - [`poller`] runs one task per source on its schedule; [`source`] holds one module per platform, each turning a
//!   response into [`mention::Mention`]s using the polite [`http`] client (per-host platform budgets, rate-limit
//!   headers honoured); after each poll the poller asks the source to look for the brand's reply in the threads of
//!   its open cases, and a reply closes the case through the [`store`];
//! - [`pipeline`] is the single writer: it drops items already seen, finds the [`brand`]s a mention is about,
//!   [`classify`]s it into a verdict (over [`text`] normalisation and the [`phrase`] matcher; [`lang`] detects the
//!   language), plans a case with
//!   [`sla`], and stores it all in one transaction;
//! - [`store`] is SQLite: seen items, cursors, mentions, cases, tiers and the alert outbox;
//! - [`sla`] fires escalation tiers when due, writing [`alert`]s to the outbox in the same transaction;
//! - [`delivery`] drains the outbox through the [`notify`] kinds (email, webhook, file) with retry and backoff;
//! - [`daemon`] wires these together with stop/reload handling, [`api`] serves health and cases over HTTP, and
//!   [`systemd`] speaks the notify protocol.

pub mod alert;
pub mod api;
pub mod backoff;
pub mod brand;
pub mod classify;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod delivery;
pub mod eval;
pub mod html;
pub mod http;
pub mod lang;
pub mod mention;
pub mod notify;
pub mod phrase;
pub mod pipeline;
pub mod poller;
pub mod sla;
pub mod source;
pub mod store;
pub mod systemd;
pub mod text;
pub mod tls;

/// Exit code for a config that cannot be used (EX_CONFIG from sysexits.h); systemd is told not to restart on it.
pub const EXIT_CONFIG: i32 = 78;
