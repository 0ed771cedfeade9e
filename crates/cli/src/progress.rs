//! Pull progress on stderr: a bar per layer on a terminal, plain lines when
//! not, nothing with `-q`.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;

use den_image::pull::{Event, Progress};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::output::human_size;

pub enum Reporter {
    Quiet,
    Lines,
    Bars {
        multi: MultiProgress,
        bars: Mutex<HashMap<String, ProgressBar>>,
    },
}

impl Reporter {
    pub fn new(quiet: bool) -> Self {
        if quiet {
            Self::Quiet
        } else if std::io::stderr().is_terminal() {
            Self::Bars {
                multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
                bars: Mutex::default(),
            }
        } else {
            Self::Lines
        }
    }

    pub fn line(&self, text: &str) {
        match self {
            Self::Quiet => {}
            Self::Lines => eprintln!("{text}"),
            Self::Bars { multi, .. } => {
                multi.println(text).ok();
            }
        }
    }

    fn bar(&self, key: &str, size: u64) -> Option<ProgressBar> {
        let Self::Bars { multi, bars } = self else {
            return None;
        };
        let mut bars = bars.lock().expect("progress lock");
        let bar = bars.entry(key.to_string()).or_insert_with(|| {
            let b = multi.add(ProgressBar::new(size));
            b.set_style(
                ProgressStyle::with_template(
                    "{prefix}: {msg:<12} [{bar:30}] {bytes}/{total_bytes}",
                )
                .expect("static template")
                .progress_chars("=> "),
            );
            b.set_prefix(key.to_string());
            b
        });
        Some(bar.clone())
    }
}

impl Progress for Reporter {
    fn event(&self, e: Event) {
        match (&e, self) {
            (_, Self::Quiet) => {}
            (Event::Resolved { endpoint, manifest }, _) => {
                self.line(&format!("Resolved {manifest} on {endpoint}"))
            }
            (Event::LayerExists { blob }, _) => {
                self.line(&format!("{}: Already exists", blob.short()))
            }
            (Event::Downloading { blob, size }, Self::Lines) => {
                eprintln!("{}: Downloading {}", blob.short(), human_size(*size))
            }
            (Event::Downloading { blob, size }, _) => {
                if let Some(b) = self.bar(blob.short(), *size) {
                    b.set_message("Downloading");
                }
            }
            (Event::Progress { blob, done }, Self::Bars { .. }) => {
                if let Some(b) = self.bar(blob.short(), 0) {
                    b.set_position(*done);
                }
            }
            (Event::Extracting { blob }, Self::Bars { .. }) => {
                if let Some(b) = self.bar(blob.short(), 0) {
                    b.set_message("Extracting");
                }
            }
            (Event::LayerDone { blob }, Self::Bars { .. }) => {
                if let Some(b) = self.bar(blob.short(), 0) {
                    b.finish_with_message("Pull complete");
                }
            }
            (Event::LayerDone { blob }, Self::Lines) => {
                eprintln!("{}: Pull complete", blob.short())
            }
            _ => {}
        }
    }
}
