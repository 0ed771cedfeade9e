//! Smoke tests: the binary runs as the test users, and the machine set-up that
//! tests/run.sh does (users, subordinate ids, registries) is in place.

use den_tests::*;

#[test]
fn version_prints_den() {
    let env = require_base_env!();
    for user in [&env.user_sub, &env.user_nosub] {
        let out = env.sandbox(user).den_ok(&["--version"]);
        assert!(
            out.starts_with("den "),
            "`den --version` as {user} printed {out:?}"
        );
    }
}

fn subid_lines(file: &str, user: &str) -> Vec<String> {
    let (uid, _) = user_ids(user);
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter(|l| {
            let owner = l.split(':').next().unwrap_or("");
            owner == user || owner == uid.to_string()
        })
        .map(str::to_string)
        .collect()
}

#[test]
fn test_users_exist_with_and_without_subids() {
    let env = require_base_env!();
    for file in ["/etc/subuid", "/etc/subgid"] {
        let sub = subid_lines(file, &env.user_sub);
        assert!(
            sub.iter()
                .any(|l| l == &format!("{}:100000:65536", env.user_sub)),
            "{file} lacks {}:100000:65536: {sub:?}",
            env.user_sub
        );
        let nosub = subid_lines(file, &env.user_nosub);
        assert!(
            nosub.is_empty(),
            "{file} has entries for {}: {nosub:?}",
            env.user_nosub
        );
    }
}

#[test]
fn sandbox_runs_as_the_user() {
    let env = require_base_env!();
    for user in [&env.user_sub, &env.user_nosub] {
        let sb = env.sandbox(user);
        let out =
            sb.sh_ok("id -un; echo \"$HOME\"; pwd; touch \"$HOME/.config/den/probe\" && echo ok");
        let lines: Vec<&str> = out.lines().collect();
        let home = sb.home();
        let home = home.to_str().unwrap();
        assert_eq!(lines, [user.as_str(), home, home, "ok"], "as {user}");
        assert!(sb.root().starts_with(sb.home()));
    }
}

#[test]
fn registries_serve_the_test_images() {
    let env = require_env!();
    let sb = env.sandbox_sub();
    let out = sb.sh_ok(&format!(
        "curl -sf http://{}/v2/library/busybox/tags/list",
        env.registry
    ));
    assert!(
        out.contains("latest") && out.contains("1.38.0-musl"),
        "{out}"
    );
    // basic auth: 401 anonymous, 200 with the credentials
    let code = |extra: &str| {
        sb.sh_ok(&format!(
            "curl -s -o /dev/null -w '%{{http_code}}' {extra} http://{}/v2/_catalog",
            env.registry_basic
        ))
    };
    assert_eq!(code(""), "401");
    assert_eq!(code(&format!("-u {}", env.creds)), "200");
    // token auth: anonymous /v2/ answers 401 with a Bearer challenge
    let hdrs = sb.sh_ok(&format!(
        "curl -s -D - -o /dev/null http://{}/v2/",
        env.registry_token
    ));
    assert!(
        hdrs.to_ascii_lowercase()
            .contains("www-authenticate: bearer"),
        "{hdrs}"
    );
}
