//! `den system check`: one line per rootless prerequisite.
