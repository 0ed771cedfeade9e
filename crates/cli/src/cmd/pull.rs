//! `den pull` (fetching itself is [`crate::registry::pull_image`]).

use den_image::manifest::Platform;
use den_image::pull::PullOptions;
use den_image::reference::ImageRef;
use den_image::store::display_name;

use crate::args::PullArgs;
use crate::context::Context;
use crate::progress::Reporter;
use crate::registry::pull_image;

pub fn run(ctx: &Context, args: &PullArgs) -> anyhow::Result<i32> {
    let image = ImageRef::parse(&args.image)?;
    let platform = match &args.platform {
        Some(p) => Platform::parse(p)?,
        None => Platform::host(),
    };
    let reporter = Reporter::new(args.quiet);
    let opts = PullOptions {
        platform,
        tls_verify: args.registry.tls_verify,
    };
    let shown = image.tagged_name().unwrap_or_else(|| image.to_string());
    let before = ctx
        .store()?
        .images()?
        .into_iter()
        .find(|i| i.names.contains(&shown))
        .map(|i| i.id);
    let record = pull_image(ctx, &image, &opts, &args.registry, &reporter)?;
    if !args.quiet {
        let status = if before.as_ref() == Some(&record.id) {
            "Image is up to date for"
        } else {
            "Downloaded newer image for"
        };
        eprintln!(
            "Digest: {}",
            record
                .repo_digests
                .last()
                .and_then(|d| d.rsplit_once('@'))
                .map(|(_, d)| d)
                .unwrap_or_default()
        );
        eprintln!("Status: {status} {}", display_name(&shown));
    }
    println!("{shown}");
    Ok(0)
}
