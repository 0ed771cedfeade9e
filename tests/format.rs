//! Docker habits on the real `den` binary as the unprivileged test user:
//! `--format` Go templates (and the `table` prefix) on `ps`, `images`,
//! `inspect -f`, `volume ls|inspect`, `network ls|inspect`, `history`,
//! `system df` and `compose ps`; shell completions and man pages.

use den_tests::{TestEnv, UserSandbox, require_env, run_sleeper, stdout};

fn sandbox(env: &TestEnv) -> UserSandbox {
    den_tests::mirrored_sandbox(env, true, true)
}

/// `ps` and `inspect` with templates on a running container with a label
/// and a volume; `table` and `json` keep their meaning.
#[test]
fn ps_and_inspect_render_go_templates() {
    let env = require_env!();
    let sb = sandbox(&env);
    run_sleeper(
        &sb,
        "web",
        &["--label", "tier=front", "-v", "data:/data"],
        "1000",
    );
    assert_eq!(sb.den_ok(&["ps", "--format", "{{.Names}}"]), "web\n");
    assert_eq!(
        sb.den_ok(&[
            "ps",
            "--format",
            r#"{{.Label "tier"}} {{.State}} {{.Labels}} {{.Mounts}}"#
        ]),
        "front running tier=front data\n"
    );
    let id = sb.den_ok(&["inspect", "-f", "{{.Id}}", "web"]);
    let table = sb.den_ok(&["ps", "--format", r"table {{.ID}}\t{{.Image}}\t{{.Names}}"]);
    assert_eq!(
        table,
        format!(
            "CONTAINER ID   IMAGE     NAMES\n{}   busybox   web\n",
            &id.trim()[..12]
        )
    );
    assert!(
        sb.den_ok(&["ps", "--format", "table"])
            .starts_with("CONTAINER ID   IMAGE")
    );
    let json: serde_json::Value =
        serde_json::from_str(&sb.den_ok(&["ps", "--format", "json"])).unwrap();
    assert_eq!(json[0]["Names"][0], "web");

    assert_eq!(
        sb.den_ok(&["inspect", "-f", "{{.State.Status}}", "web"]),
        "running\n"
    );
    assert_eq!(
        sb.den_ok(&[
            "container",
            "inspect",
            "--format",
            "{{json .State.Running}}",
            "web"
        ]),
        "true\n"
    );
    assert_eq!(
        sb.den_ok(&[
            "inspect",
            "-f",
            "{{range .Mounts}}{{.Destination}} {{end}}",
            "web"
        ]),
        "/data \n"
    );
    let env_list = sb.den_ok(&["inspect", "-f", "{{.Config.Env}}", "web"]);
    assert!(
        env_list.starts_with("[PATH=") && env_list.ends_with("]\n"),
        "{env_list}"
    );
    assert_eq!(
        sb.den_ok(&["inspect", "-f", r#"{{index .Config.Labels "tier"}}"#, "web"]),
        "front\n"
    );
    // One line per object, a container and an image alike.
    let two = sb.den_ok(&["inspect", "-f", "{{len .Id}}", "web", "busybox"]);
    assert_eq!(two.lines().count(), 2, "{two}");
    sb.den_ok(&["rm", "-f", "web"]);
}

/// A field Docker does not have, or a broken template: one line naming
/// it, exit 125, nothing else printed.
#[test]
fn unknown_fields_and_bad_templates_are_refused() {
    let env = require_env!();
    let sb = sandbox(&env);
    run_sleeper(&sb, "bad", &[], "1000");
    let err = sb.den_fail(&["ps", "--format", "{{.Nope}}"], 125);
    assert!(
        err.starts_with(
            "den: --format `{{.Nope}}`: can't evaluate field Nope: the fields here are ."
        ) && err.trim_end().lines().count() == 1,
        "{err}"
    );
    let err = sb.den_fail(&["inspect", "-f", "{{.State.Nope}}", "bad"], 125);
    assert!(
        err.contains("can't evaluate field Nope: the fields here are"),
        "{err}"
    );
    assert!(err.contains(".Status"), "{err}");
    let err = sb.den_fail(&["images", "--format", "{{.ID"], 125);
    assert!(
        err.contains("invalid --format `{{.ID`: unclosed action"),
        "{err}"
    );
    let err = sb.den_fail(&["ps", "--format", "{{nofunc .ID}}"], 125);
    assert!(err.contains("function \"nofunc\" not defined"), "{err}");
    sb.den_ok(&["rm", "-f", "bad"]);
}

/// Images, history, volumes, networks and disk usage with Docker's field
/// names.
#[test]
fn images_volumes_networks_history_and_df_take_templates() {
    let env = require_env!();
    let sb = sandbox(&env);
    let images = sb.den_ok(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.Size}}"]);
    assert!(
        images
            .lines()
            .any(|l| l.starts_with("busybox:latest ") && l.ends_with("B")),
        "{images}"
    );
    let table = sb.den_ok(&["images", "--format", r"table {{.Tag}}\t{{.ID}}"]);
    assert!(
        table.starts_with("TAG       IMAGE ID\nlatest    "),
        "{table}"
    );
    let history = sb.den_ok(&["history", "--format", "{{.ID}}|{{.Size}}", "busybox"]);
    assert!(
        history.lines().all(|l| l.starts_with("<missing>|")),
        "{history}"
    );

    sb.den_ok(&["volume", "create", "vol1"]);
    assert!(
        sb.den_ok(&["volume", "ls", "--format", "{{.Name}} {{.Driver}}"])
            .lines()
            .any(|l| l == "vol1 local")
    );
    let mp = sb.den_ok(&["volume", "inspect", "-f", "{{.Mountpoint}}", "vol1"]);
    assert!(
        mp.trim_end().ends_with("/vol1/_data") || mp.contains("vol1"),
        "{mp}"
    );
    assert!(
        sb.den_ok(&["volume", "ls", "--format", r"table {{.Name}}\t{{.Driver}}"])
            .starts_with("VOLUME NAME   DRIVER\n")
    );

    sb.den_ok(&["network", "create", "front"]);
    assert_eq!(
        sb.den_ok(&["network", "ls", "--format", "{{.Name}} {{.Driver}}"]),
        "front bridge\n"
    );
    assert_eq!(
        sb.den_ok(&[
            "network",
            "inspect",
            "-f",
            "{{.Driver}} {{len .Containers}}",
            "front"
        ]),
        "bridge 0\n"
    );
    sb.den_ok(&["network", "rm", "front"]);

    let df = sb.den_ok(&["system", "df", "--format", "{{.Type}}={{.TotalCount}}"]);
    assert!(df.lines().any(|l| l == "Local Volumes=1"), "{df}");
    assert!(df.starts_with("Images="), "{df}");
}

/// `compose ps --format` with Docker compose's field names.
#[test]
fn compose_ps_takes_templates() {
    let env = require_env!();
    let sb = sandbox(&env);
    let file = sb.write_file(
        "tmpl/compose.yaml",
        "services:\n  app:\n    image: busybox\n    command: [\"sleep\", \"1000\"]\n",
    );
    let file = file.to_str().unwrap();
    sb.den_ok(&["compose", "-f", file, "-p", "tmpl", "up", "-d"]);
    let out = sb.den(&[
        "compose",
        "-f",
        file,
        "-p",
        "tmpl",
        "ps",
        "--format",
        "{{.Service}} {{.Name}} {{.State}}",
    ]);
    sb.den_ok(&["compose", "-f", file, "-p", "tmpl", "down"]);
    assert_eq!(stdout(&out), "app tmpl-app-1 running\n");
}

/// A real bash loads `den completion bash` (`complete -p den`) and
/// completes a subcommand and a flag from it; zsh's and fish's scripts
/// name den's commands too.
#[test]
fn bash_loads_the_completion_and_completes_subcommands() {
    let env = require_env!();
    let sb = env.sandbox_sub();
    sb.write_file("den.bash", sb.den_ok(&["completion", "bash"]));
    let out = sb.sh_ok(
        "bash -c '. ./den.bash && complete -p den && \
         COMP_WORDS=(den insp); COMP_CWORD=1; COMP_LINE=\"den insp\"; COMP_POINT=8; \
         _den den insp den; echo \"words: ${COMPREPLY[*]}\"; \
         COMP_WORDS=(den ps --for); COMP_CWORD=2; COMP_LINE=\"den ps --for\"; COMP_POINT=12; \
         _den den --for ps; echo \"flags: ${COMPREPLY[*]}\"'",
    );
    assert!(
        out.starts_with("complete ") && out.contains(" -F _den den\n"),
        "{out}"
    );
    assert!(
        out.trim_end()
            .ends_with(" den\nwords: inspect\nflags: --format"),
        "{out}"
    );
    assert!(
        sb.den_ok(&["completion", "zsh"])
            .starts_with("#compdef den")
    );
    assert!(
        sb.den_ok(&["completion", "fish"])
            .contains("complete -c den")
    );
    let err = sb.den_fail(&["completion", "tcsh"], 125);
    assert!(err.contains("invalid value 'tcsh'"), "{err}");
}

/// `den help CMD <TAB>` offers CMD's subcommands, for commands whose
/// subcommands clap adds only when they are chosen (`defer`) too: bash
/// completes them, and zsh's and fish's scripts list them under `help`.
#[test]
fn help_completes_the_subcommands_of_each_command() {
    let env = require_env!();
    let sb = env.sandbox_sub();
    sb.write_file("den.bash", sb.den_ok(&["completion", "bash"]));
    let out = sb.sh_ok(
        "bash -c '. ./den.bash && \
         COMP_WORDS=(den help compose \"\"); COMP_CWORD=3; COMP_LINE=\"den help compose \"; COMP_POINT=17; \
         _den den \"\" compose; echo \"compose: ${COMPREPLY[*]}\"; \
         COMP_WORDS=(den help network c); COMP_CWORD=3; COMP_LINE=\"den help network c\"; COMP_POINT=18; \
         _den den c network; echo \"network: ${COMPREPLY[*]}\"'",
    );
    assert_eq!(
        out,
        "compose: config up create down ps logs build pull exec run start stop restart kill rm port top push images ls\n\
         network: create connect\n"
    );
    let zsh = sb.den_ok(&["completion", "zsh"]);
    let listed = zsh
        .split("_den__subcmd__help__subcmd__compose_commands() {")
        .nth(1)
        .and_then(|rest| rest.split('}').next())
        .unwrap_or_else(|| panic!("no `den help compose` in zsh's script"));
    assert!(
        listed.contains("'up:Create and start the project"),
        "{listed}"
    );
    let fish = sb.den_ok(&["completion", "fish"]);
    assert!(
        fish.lines()
            .any(|l| l.contains("__fish_den_using_subcommand help")
                && l.contains("__fish_seen_subcommand_from compose")
                && l.contains("-f -a \"up\" -d 'Create and start the project")),
        "no `den help compose up` in fish's script"
    );
}

/// `den __internal man DIR` writes den.1 and a page per command, from the
/// same definitions as `--help`.
#[test]
fn man_pages_are_generated_for_every_command() {
    let env = require_env!();
    let sb = env.sandbox_sub();
    sb.den_ok(&["__internal", "man", "man1"]);
    let man = sb.home().join("man1");
    let page = std::fs::read_to_string(man.join("den-ps.1")).unwrap();
    assert!(
        page.starts_with(".ie \\n(.g .ds Aq") || page.contains(".TH den-ps 1"),
        "{page}"
    );
    assert!(
        page.contains(".TH den\\-ps 1") || page.contains(".TH den-ps 1"),
        "{page}"
    );
    assert!(page.contains("\\-\\-format"), "{page}");
    for p in ["den.1", "den-run.1", "den-image-ls.1", "den-completion.1"] {
        assert!(man.join(p).is_file(), "{p} missing");
    }
    assert!(!man.join("den-__internal.1").exists());
}

/// `den info` and `den version` name the store, the user namespace mode
/// and the components, as lines, JSON and templates; `-V` still works.
#[test]
fn info_and_version_report_the_host_and_take_formats() {
    let env = require_env!();
    let sb = env.sandbox_sub();
    sb.den_ok(&["volume", "create", "counted"]);
    let info: serde_json::Value =
        serde_json::from_str(&sb.den_ok(&["info", "--format", "json"])).unwrap();
    assert_eq!(info["DenRootDir"], sb.root().to_str().unwrap());
    assert_eq!(info["Volumes"], 1);
    assert_eq!(info["Containers"], 0);
    assert!(
        info["UserNamespace"]
            .as_str()
            .unwrap()
            .starts_with("subordinate ids "),
        "{info}"
    );
    let pasta = info["Pasta"].as_str().unwrap();
    assert!(
        !pasta.is_empty() && !pasta.starts_with("not usable"),
        "{info}"
    );
    let lines = sb.den_ok(&["info"]);
    assert!(lines.contains("\nVolumes: 1\n"), "{lines}");
    assert_eq!(
        sb.den_ok(&["info", "-f", "{{.Volumes}} {{.Images}}"]),
        "1 0\n"
    );
    let nosub = env.sandbox_nosub();
    assert_eq!(
        nosub.den_ok(&["info", "-f", "{{.UserNamespace}}"]),
        "single id (no subordinate ids)\n"
    );

    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        sb.den_ok(&["version", "--format", "{{.Version}}"]),
        format!("{version}\n")
    );
    assert_eq!(sb.den_ok(&["-V"]), format!("den {version}\n"));
    let v: serde_json::Value =
        serde_json::from_str(&sb.den_ok(&["version", "--format", "json"])).unwrap();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    assert_eq!(v["Kernel"], kernel.trim());
    assert!(v["LandlockABI"].as_u64().is_some(), "{v}");
    assert!(
        sb.den_ok(&["version"])
            .starts_with(&format!("Version: {version}\n"))
    );
}
