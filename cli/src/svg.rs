//! `eo check --svg DIR`: a picture of every counterexample and every
//! `sometimes` example, one self-contained SVG file per property.
//!
//! An actor model's steps read `sender 0 → receiver: Data(0)`, `receiver
//! crashes`, `sender 0: Retry timer fires`, … (the model crate's
//! `System::describe`); they are drawn as a sequence diagram: one lifeline per
//! actor, an arrow per delivery, a cross per loss or crash, a dashed lifeline
//! while an actor is down. A plain model's steps (`RMPrepare(rm 0)`) have no
//! actors; they are drawn as a numbered table of steps. Either picture ends with
//! the durable facts of the last state and carries a title that says what went
//! wrong.
//!
//! The output depends only on the steps and the texts given, so a committed
//! diagram can be compared byte for byte with a fresh one.

use crate::check::plural;
use std::fmt::Write;

/// What a path is drawn for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A counterexample to the property.
    Violation,
    /// An example of a `sometimes` property.
    Example,
    /// The path to the state the Explorer shows (no property).
    Explored,
}

/// What a picture shows: a property's counterexample or example, or the path
/// to the state shown in the Explorer.
pub struct Picture<'a> {
    pub model: &'a str,
    pub variant: &'a str,
    pub property: &'a str,
    /// `always`, `sometimes` or `eventually`.
    pub expectation: &'a str,
    /// What the property says, in one line (from `eo list`).
    pub about: &'a str,
    pub kind: Kind,
    pub steps: &'a [String],
    /// The durable facts of the last state, `; `-separated.
    pub final_state: Option<&'a str>,
}

impl Picture<'_> {
    /// `ack-retry-no-dedup-exactly-once.svg`.
    pub fn file_name(&self) -> String {
        format!("{}-{}-{}.svg", self.model, self.variant, self.property)
    }

    /// The headline: what went wrong (or what was shown possible).
    pub fn title(&self) -> String {
        let (model, variant, steps) = (self.model, self.variant, plural(self.steps.len(), "step"));
        match self.kind {
            Kind::Violation => format!(
                "{model} · {variant}: {} is violated in {steps}",
                self.property
            ),
            Kind::Example => format!(
                "{model} · {variant}: an example of {} in {steps}",
                self.property
            ),
            Kind::Explored => format!("{model} · {variant}: the state shown, after {steps}"),
        }
    }

    /// The picture as an SVG document.
    pub fn render(&self) -> String {
        let events: Option<Vec<Event>> = self.steps.iter().map(|s| Event::parse(s)).collect();
        match events {
            Some(events) if !events.is_empty() => self.sequence_diagram(&events),
            _ => self.step_table(),
        }
    }

    /// Title and subtitle, shared by both pictures.
    fn header(&self, svg: &mut String) {
        let subtitle = self.subtitle();
        let _ = writeln!(
            svg,
            "<text x='{MARGIN}' y='28' class='title'>{}</text>",
            escape(&self.title())
        );
        let _ = writeln!(
            svg,
            "<text x='{MARGIN}' y='50' class='subtitle'>{}</text>",
            escape(&subtitle)
        );
    }

    /// The final state under the picture, one fact per line, from `top`.
    fn footer(&self, svg: &mut String, top: usize) {
        let Some(state) = self.final_state else {
            return;
        };
        let label = match self.kind {
            Kind::Violation => "then",
            Kind::Example => "reached",
            Kind::Explored => "durable facts",
        };
        let _ = writeln!(
            svg,
            "<text x='{MARGIN}' y='{top}' class='state-head'>{label}:</text>"
        );
        for (i, fact) in state.split("; ").enumerate() {
            let y = top + (i + 1) * FACT_LINE_PX;
            let _ = writeln!(
                svg,
                "<text x='{}' y='{y}' class='state'>{}</text>",
                MARGIN + 16,
                escape(fact)
            );
        }
    }

    fn footer_height(&self) -> usize {
        self.final_state.map_or(0, |s| {
            (s.split("; ").count() + 1) * FACT_LINE_PX + FACT_LINE_PX
        })
    }

    fn footer_width(&self) -> usize {
        self.final_state.map_or(0, |s| {
            MARGIN + 16 + s.split("; ").map(text_width).max().unwrap_or(0)
        })
    }

    /// What the property demands (empty for an explored path).
    fn subtitle(&self) -> String {
        if self.kind == Kind::Explored {
            String::new()
        } else {
            format!("{} {}: {}", self.expectation, self.property, self.about)
        }
    }

    fn header_width(&self) -> usize {
        let subtitle = self.subtitle();
        MARGIN + (text_width(&self.title()) * 14 / 12).max(text_width(&subtitle))
    }

    fn sequence_diagram(&self, events: &[Event]) -> String {
        // Actors in order of first appearance.
        let mut actors: Vec<&str> = Vec::new();
        for e in events {
            for name in e.actors() {
                if !actors.contains(&name) {
                    actors.push(name);
                }
            }
        }
        let column = actors
            .iter()
            .map(|a| text_width(a) + 40)
            .chain(events.iter().map(|e| e.label_width() + 40))
            .max()
            .unwrap_or(0)
            .clamp(COLUMN_MIN_PX, COLUMN_MAX_PX);
        let x = |actor: &str| {
            let i = actors.iter().position(|a| *a == actor).unwrap_or(0);
            LIFELINES_LEFT + i * column
        };
        let row = |i: usize| LIFELINES_TOP + (i + 1) * ROW_PX;
        let bottom = row(events.len()) + ROW_PX / 2;
        let labels_right = events.iter().map(|e| e.label_right(&x)).max().unwrap_or(0);
        let width = (LIFELINES_LEFT + (actors.len().saturating_sub(1)) * column + column / 2)
            .max(labels_right + MARGIN)
            .max(self.header_width() + MARGIN)
            .max(self.footer_width() + MARGIN);
        let height = bottom + FACT_LINE_PX + self.footer_height();

        let mut svg = open(width, height);
        self.header(&mut svg);

        // Lifelines: solid while up, dashed while down.
        for actor in &actors {
            let ax = x(actor);
            let _ = writeln!(
                svg,
                "<rect x='{}' y='{}' width='{}' height='24' rx='4' class='actor-box'/>",
                ax - column / 2 + 8,
                LIFELINES_TOP - 20,
                column - 16
            );
            let _ = writeln!(
                svg,
                "<text x='{ax}' y='{}' class='actor'>{}</text>",
                LIFELINES_TOP - 3,
                escape(actor)
            );
            let mut y = LIFELINES_TOP + 4;
            let mut down = false;
            for (i, e) in events.iter().enumerate() {
                let flips = match e {
                    Event::Crash { actor: a, .. } if a == actor => !down,
                    Event::Recover { actor: a } if a == actor => down,
                    _ => false,
                };
                if flips {
                    let class = if down { "lifeline-down" } else { "lifeline" };
                    let _ = writeln!(
                        svg,
                        "<line x1='{ax}' y1='{y}' x2='{ax}' y2='{}' class='{class}'/>",
                        row(i)
                    );
                    y = row(i);
                    down = !down;
                }
            }
            let class = if down { "lifeline-down" } else { "lifeline" };
            let _ = writeln!(
                svg,
                "<line x1='{ax}' y1='{y}' x2='{ax}' y2='{bottom}' class='{class}'/>"
            );
        }

        // One event per row, numbered as in `eo check`'s text.
        for (i, e) in events.iter().enumerate() {
            let y = row(i);
            let _ = writeln!(
                svg,
                "<text x='{}' y='{}' class='step'>{}.</text>",
                MARGIN + 24,
                y + 4,
                i + 1
            );
            e.draw(&mut svg, &x, y);
        }

        self.footer(&mut svg, bottom + FACT_LINE_PX);
        svg.push_str("</svg>\n");
        svg
    }

    fn step_table(&self) -> String {
        let top = 84;
        let width = self
            .steps
            .iter()
            .map(|s| MARGIN + 48 + text_width(s))
            .max()
            .unwrap_or(0)
            .max(self.header_width())
            .max(self.footer_width())
            + MARGIN;
        let bottom = top + self.steps.len() * FACT_LINE_PX + FACT_LINE_PX;
        let height = bottom + FACT_LINE_PX + self.footer_height();
        let mut svg = open(width, height);
        self.header(&mut svg);
        let _ = writeln!(
            svg,
            "<text x='{MARGIN}' y='{}' class='state-head'>steps:</text>",
            top - 6
        );
        for (i, step) in self.steps.iter().enumerate() {
            let y = top + (i + 1) * FACT_LINE_PX;
            let _ = writeln!(
                svg,
                "<text x='{}' y='{y}' class='step'>{}.</text><text x='{}' y='{y}' class='state'>{}</text>",
                MARGIN + 24,
                i + 1,
                MARGIN + 36,
                escape(step)
            );
        }
        self.footer(&mut svg, bottom + FACT_LINE_PX);
        svg.push_str("</svg>\n");
        svg
    }
}

/// Outer margin, in pixels.
const MARGIN: usize = 16;
/// Where the first lifeline is drawn: room for the step numbers on its left.
const LIFELINES_LEFT: usize = 150;
/// Where lifelines start, below the title.
const LIFELINES_TOP: usize = 100;
/// Height of one step, in pixels.
const ROW_PX: usize = 34;
/// Height of one line of text under a picture, in pixels.
const FACT_LINE_PX: usize = 18;
/// Lifelines are this far apart at least, and at most.
const COLUMN_MIN_PX: usize = 150;
const COLUMN_MAX_PX: usize = 260;
/// Width of a character of the 12 px monospace font, in tenths of a pixel.
const CHAR_WIDTH_DECI_PX: usize = 73;

/// The width of `text` in the 12 px monospace font, in pixels.
fn text_width(text: &str) -> usize {
    text.chars().count() * CHAR_WIDTH_DECI_PX / 10
}

/// The start of a document: size, and the styles it needs (it does not rely on
/// the Explorer's stylesheet, so it reads the same in a browser, an editor, or
/// a Markdown page).
fn open(width: usize, height: usize) -> String {
    format!(
        "<svg xmlns='http://www.w3.org/2000/svg' version='1.1' width='{width}' height='{height}' viewBox='0 0 {width} {height}'>\n\
<style>\n\
text {{ font-family: ui-monospace, 'DejaVu Sans Mono', Menlo, Consolas, monospace; font-size: 12px; fill: #1f2328; }}\n\
.title {{ font-size: 14px; font-weight: bold; }}\n\
.subtitle {{ fill: #57606a; }}\n\
.actor {{ text-anchor: middle; font-weight: bold; }}\n\
.actor-box {{ fill: #f6f8fa; stroke: #8c959f; }}\n\
.lifeline {{ stroke: #8c959f; stroke-width: 1.5; }}\n\
.lifeline-down {{ stroke: #cf222e; stroke-width: 1.5; stroke-dasharray: 4 4; }}\n\
.step {{ fill: #57606a; text-anchor: end; }}\n\
.message {{ stroke: #0969da; stroke-width: 1.5; fill: none; }}\n\
.message-label {{ fill: #0969da; }}\n\
.lost {{ stroke: #cf222e; stroke-width: 1.5; fill: none; stroke-dasharray: 5 3; }}\n\
.fault {{ stroke: #cf222e; stroke-width: 2.5; }}\n\
.fault-label {{ fill: #cf222e; font-weight: bold; }}\n\
.recover {{ fill: #1a7f37; }}\n\
.recover-label {{ fill: #1a7f37; }}\n\
.timer {{ fill: #ffffff; stroke: #9a6700; stroke-width: 1.5; }}\n\
.timer-label {{ fill: #9a6700; }}\n\
.choice {{ fill: #8250df; }}\n\
.choice-label {{ fill: #8250df; }}\n\
.state-head {{ font-weight: bold; }}\n\
</style>\n\
<defs><marker id='arrow' markerWidth='10' markerHeight='8' refX='10' refY='4' orient='auto'><polygon points='0 0, 10 4, 0 8' fill='#0969da'/></marker></defs>\n\
<rect width='100%' height='100%' fill='#ffffff'/>\n"
    )
}

/// One step of an actor model, as `System::describe` words it.
#[derive(Debug, PartialEq)]
enum Event<'a> {
    /// `A → B: M`
    Deliver {
        src: &'a str,
        dst: &'a str,
        msg: &'a str,
    },
    /// `network loses A → B: M`
    Lose {
        src: &'a str,
        dst: &'a str,
        msg: &'a str,
    },
    /// `A: T timer fires`
    Timer { actor: &'a str, timer: &'a str },
    /// `A crashes`, or `A crashes and loses its disk` (`disk_lost`)
    Crash { actor: &'a str, disk_lost: bool },
    /// `A recovers`
    Recover { actor: &'a str },
    /// `A chooses X`
    Choose { actor: &'a str, choice: &'a str },
}

impl<'a> Event<'a> {
    /// The event a step describes, or `None` for a step of a plain model.
    fn parse(step: &'a str) -> Option<Event<'a>> {
        let envelope = |text: &'a str| {
            let (src, rest) = text.split_once(" → ")?;
            let (dst, msg) = rest.split_once(": ")?;
            Some((src, dst, msg))
        };
        if let Some(rest) = step.strip_prefix("network loses ") {
            let (src, dst, msg) = envelope(rest)?;
            return Some(Event::Lose { src, dst, msg });
        }
        if step.contains(" → ") {
            let (src, dst, msg) = envelope(step)?;
            return Some(Event::Deliver { src, dst, msg });
        }
        if let Some(rest) = step.strip_suffix(" timer fires") {
            let (actor, timer) = rest.split_once(": ")?;
            return Some(Event::Timer { actor, timer });
        }
        if let Some(actor) = step.strip_suffix(" crashes and loses its disk") {
            return Some(Event::Crash {
                actor,
                disk_lost: true,
            });
        }
        if let Some(actor) = step.strip_suffix(" crashes") {
            return Some(Event::Crash {
                actor,
                disk_lost: false,
            });
        }
        if let Some(actor) = step.strip_suffix(" recovers") {
            return Some(Event::Recover { actor });
        }
        if let Some((actor, choice)) = step.split_once(" chooses ") {
            return Some(Event::Choose { actor, choice });
        }
        None
    }

    fn actors(&self) -> Vec<&'a str> {
        match *self {
            Event::Deliver { src, dst, .. } | Event::Lose { src, dst, .. } => vec![src, dst],
            Event::Timer { actor, .. }
            | Event::Crash { actor, .. }
            | Event::Recover { actor }
            | Event::Choose { actor, .. } => vec![actor],
        }
    }

    fn label(&self) -> String {
        match self {
            Event::Deliver { msg, .. } => (*msg).to_owned(),
            Event::Lose { msg, .. } => format!("{msg} lost"),
            Event::Timer { timer, .. } => format!("{timer} timer fires"),
            Event::Crash {
                disk_lost: false, ..
            } => "crashes".to_owned(),
            Event::Crash {
                disk_lost: true, ..
            } => "crashes, loses its disk".to_owned(),
            Event::Recover { .. } => "recovers".to_owned(),
            Event::Choose { choice, .. } => format!("chooses {choice}"),
        }
    }

    /// The width a delivery label needs between two lifelines.
    fn label_width(&self) -> usize {
        match self {
            Event::Deliver { .. } => text_width(&self.label()),
            _ => 0,
        }
    }

    /// The rightmost pixel of this event's label.
    fn label_right(&self, x: &dyn Fn(&str) -> usize) -> usize {
        match self {
            Event::Deliver { src, dst, .. } | Event::Lose { src, dst, .. } => {
                let mid = (x(src) + x(dst)) / 2;
                mid + text_width(&self.label()) / 2 + 8
            }
            Event::Timer { actor, .. }
            | Event::Crash { actor, .. }
            | Event::Recover { actor }
            | Event::Choose { actor, .. } => x(actor) + 14 + text_width(&self.label()),
        }
    }

    /// Draws the event on its row `y`.
    fn draw(&self, svg: &mut String, x: &dyn Fn(&str) -> usize, y: usize) {
        let label = escape(&self.label());
        match *self {
            Event::Deliver { src, dst, .. } => {
                let (x1, x2) = (x(src), x(dst));
                let mid = (x1 + x2) / 2;
                let _ = writeln!(
                    svg,
                    "<line x1='{x1}' y1='{}' x2='{x2}' y2='{}' class='message' marker-end='url(#arrow)'/>",
                    y - 10,
                    y + 6
                );
                let _ = writeln!(
                    svg,
                    "<text x='{mid}' y='{}' class='message-label' text-anchor='middle'>{label}</text>",
                    y - 8
                );
            }
            Event::Lose { src, dst, .. } => {
                let (x1, x2) = (x(src), x(dst));
                let end = (x1 + x2) / 2;
                let _ = writeln!(
                    svg,
                    "<line x1='{x1}' y1='{}' x2='{end}' y2='{}' class='lost'/>",
                    y - 6,
                    y + 2
                );
                cross(svg, end, y + 2);
                let _ = writeln!(
                    svg,
                    "<text x='{end}' y='{}' class='fault-label' text-anchor='middle'>{label}</text>",
                    y - 10
                );
            }
            Event::Timer { actor, .. } => {
                let ax = x(actor);
                let _ = writeln!(svg, "<circle cx='{ax}' cy='{y}' r='6' class='timer'/>");
                side_label(svg, ax, y, "timer-label", &label);
            }
            Event::Crash { actor, .. } => {
                let ax = x(actor);
                cross(svg, ax, y);
                side_label(svg, ax, y, "fault-label", &label);
            }
            Event::Recover { actor } => {
                let ax = x(actor);
                let _ = writeln!(svg, "<circle cx='{ax}' cy='{y}' r='6' class='recover'/>");
                side_label(svg, ax, y, "recover-label", &label);
            }
            Event::Choose { actor, .. } => {
                let ax = x(actor);
                let _ = writeln!(
                    svg,
                    "<polygon points='{ax},{} {},{y} {ax},{} {},{y}' class='choice'/>",
                    y - 6,
                    ax + 6,
                    y + 6,
                    ax - 6
                );
                side_label(svg, ax, y, "choice-label", &label);
            }
        }
    }
}

/// A red cross centred on (`x`, `y`): a loss or a crash.
fn cross(svg: &mut String, x: usize, y: usize) {
    let _ = writeln!(
        svg,
        "<path d='M{} {} L{} {} M{} {} L{} {}' class='fault'/>",
        x - 6,
        y - 6,
        x + 6,
        y + 6,
        x - 6,
        y + 6,
        x + 6,
        y - 6
    );
}

/// A label right of a mark on a lifeline.
fn side_label(svg: &mut String, x: usize, y: usize, class: &str, label: &str) {
    let _ = writeln!(
        svg,
        "<text x='{}' y='{}' class='{class}'>{label}</text>",
        x + 12,
        y + 4
    );
}

/// Text made safe inside an SVG element.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' => out.push_str("&apos;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_of_an_actor_model_parse_as_events() {
        assert_eq!(
            Event::parse("sender 0 → receiver: Data(0)"),
            Some(Event::Deliver {
                src: "sender 0",
                dst: "receiver",
                msg: "Data(0)"
            })
        );
        assert_eq!(
            Event::parse("network loses coordinator → participant 1: Prepare(t0)"),
            Some(Event::Lose {
                src: "coordinator",
                dst: "participant 1",
                msg: "Prepare(t0)"
            })
        );
        assert_eq!(
            Event::parse("sender 0: Retry timer fires"),
            Some(Event::Timer {
                actor: "sender 0",
                timer: "Retry"
            })
        );
        assert_eq!(
            Event::parse("receiver crashes"),
            Some(Event::Crash {
                actor: "receiver",
                disk_lost: false
            })
        );
        assert_eq!(
            Event::parse("sender 0 crashes and loses its disk"),
            Some(Event::Crash {
                actor: "sender 0",
                disk_lost: true
            })
        );
        assert_eq!(
            Event::parse("receiver recovers"),
            Some(Event::Recover { actor: "receiver" })
        );
        assert_eq!(
            Event::parse("participant 1 chooses Yes(t0)"),
            Some(Event::Choose {
                actor: "participant 1",
                choice: "Yes(t0)"
            })
        );
        assert_eq!(Event::parse("RMPrepare(rm 0)"), None);
    }

    fn picture(steps: &[String]) -> Picture<'_> {
        Picture {
            model: "ack-retry",
            variant: "no-dedup",
            property: "exactly-once",
            expectation: "always",
            about: "no message id appears twice in the receiver's durable ledger",
            kind: Kind::Violation,
            steps,
            final_state: Some("receiver ledger [s0#0, s0#0]; crashes 0"),
        }
    }

    #[test]
    fn an_actor_path_is_a_sequence_diagram_with_a_title() {
        let steps: Vec<String> = [
            "sender 0 → receiver: Data(0)",
            "sender 0: Retry timer fires",
            "receiver crashes",
            "receiver recovers",
            "sender 0 → receiver: Data(0)",
        ]
        .map(String::from)
        .to_vec();
        let svg = picture(&steps).render();
        assert!(svg.starts_with("<svg "), "{svg}");
        assert!(svg.trim_end().ends_with("</svg>"), "{svg}");
        assert!(svg.contains("ack-retry · no-dedup: exactly-once is violated in 5 steps"));
        assert_eq!(svg.matches("class='message'").count(), 2, "{svg}");
        assert_eq!(svg.matches("class='lifeline-down'").count(), 1, "{svg}");
        assert!(svg.contains(">receiver ledger [s0#0, s0#0]<"), "{svg}");
        assert!(svg.contains("&apos;s durable ledger"), "{svg}");
    }

    #[test]
    fn a_plain_model_path_is_a_table_of_steps() {
        let steps: Vec<String> = ["RMPrepare(rm 0)", "RMCommitAlone(rm 0) [bug]"]
            .map(String::from)
            .to_vec();
        let svg = picture(&steps).render();
        assert!(!svg.contains("class='lifeline'"), "{svg}");
        assert!(svg.contains(">RMCommitAlone(rm 0) [bug]<"), "{svg}");
        assert!(svg.contains("in 2 steps"), "{svg}");
    }
}
