//! `den push IMAGE [DEST]`.

use anyhow::Context as _;
use den_image::reference::ImageRef;
use den_image::registry::Client;
use den_image::store::display_name;

use crate::args::PushArgs;
use crate::context::Context;

pub fn run(ctx: &Context, args: &PushArgs) -> anyhow::Result<i32> {
    let store = ctx.store()?;
    let image = crate::local_images::resolve(&store, &store.images()?, &args.image)?;
    let dest = ImageRef::parse(args.destination.as_deref().unwrap_or(&args.image))?;
    let conf = ctx.registries()?;
    let client = Client::new(
        ctx.auth(),
        crate::registry::parse_creds(args.registry.creds.as_deref())?,
    );
    let quiet = args.quiet;
    let report = move |line: String| {
        if !quiet {
            eprintln!("{line}");
        }
    };
    let fut = den_image::push::push(
        &store,
        &client,
        &conf,
        args.registry.tls_verify,
        &image,
        &dest,
        &report,
    );
    let digest = crate::registry::runtime()?
        .block_on(fut)
        .with_context(|| format!("pushing {dest}"))?;
    if !quiet {
        eprintln!("{}: digest: {digest}", display_name(&dest.to_string()));
    }
    Ok(0)
}
