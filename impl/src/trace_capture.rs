//! Test-only capture of the protocol cores' trace events.
//!
//! `tracing` caches one interest per callsite for the whole process, computed
//! from the dispatchers registered when the callsite is first hit. A scoped
//! dispatcher (`with_default`) therefore races with other test threads: a
//! callsite first hit elsewhere, or registered while the scoped dispatcher is
//! being installed, can be cached as "never" and its events silently missed.
//! Rebuilding the cache and keeping an anchor dispatcher alive narrowed that
//! race but did not close it (CI saw `apply` go missing).
//!
//! Here one subscriber is installed process-wide, once, and is interested in
//! every callsite; so no callsite's interest can ever be "never". It records an
//! event only on a thread that is inside [`capture`], so tests running on other
//! threads are unaffected.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Once;
use tracing::field::{Field, Visit};
use tracing::subscriber::Interest;
use tracing::Metadata;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

/// One event: its target and fields, every value as text.
pub type Event = (String, BTreeMap<String, String>);

thread_local! {
    static CAPTURED: RefCell<Option<Vec<Event>>> = const { RefCell::new(None) };
}

struct ThreadCapture;

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S: tracing::Subscriber> Layer<S> for ThreadCapture {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        Interest::always()
    }
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        CAPTURED.with(|c| {
            if let Some(events) = c.borrow_mut().as_mut() {
                let mut fields = BTreeMap::new();
                event.record(&mut Fields(&mut fields));
                events.push((event.metadata().target().to_owned(), fields));
            }
        });
    }
}

/// Runs `f` and returns the events it emitted on this thread with `target`.
pub fn capture(target: &str, f: impl FnOnce()) -> Vec<BTreeMap<String, String>> {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let subscriber = tracing_subscriber::registry()
            .with(ThreadCapture)
            .with(tracing_subscriber::filter::LevelFilter::TRACE);
        // Only `TPC_DEBUG=1` installs another (a printing one) in this binary.
        if tracing::subscriber::set_global_default(subscriber).is_err() {
            eprintln!("trace capture: another global subscriber is installed (TPC_DEBUG?); captures will be empty");
        }
        tracing::callsite::rebuild_interest_cache();
    });
    CAPTURED.with(|c| *c.borrow_mut() = Some(Vec::new()));
    f();
    let events = CAPTURED.with(|c| c.borrow_mut().take()).unwrap_or_default();
    events
        .into_iter()
        .filter(|(t, _)| t == target)
        .map(|(_, fields)| fields)
        .collect()
}
