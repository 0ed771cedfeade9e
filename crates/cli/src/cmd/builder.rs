//! `den builder prune [-a] [-f]`: frees the build cache (see
//! `crate::build_cache`), then the layers only it kept.

use crate::context::Context;
use crate::output::human_size;

pub fn prune(ctx: &Context, all: bool, force: bool) -> anyhow::Result<i32> {
    let warning = if all {
        "WARNING! This will remove all build cache."
    } else {
        "WARNING! This will remove all dangling build cache."
    };
    crate::confirm::prune("builder", warning, force)?;
    let store = ctx.store()?;
    let before = crate::build_cache::usage(&store)?.size;
    let dropped = crate::build_cache::prune(&store, all)?;
    crate::build_cache::collect(ctx, &store)?;
    let after = crate::build_cache::usage(&store)?.size;
    println!("Deleted build cache records: {dropped}");
    println!(
        "Total reclaimed space: {}",
        human_size(before.saturating_sub(after))
    );
    Ok(0)
}
