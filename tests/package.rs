//! What `cargo package` would publish: the library's sources, manifest, README and licence files, and
//! nothing users do not need (benchmarks and their results, screenshots, scripts, the demo page, tests of
//! other parts). Runs `cargo package --list`, which reads the manifests' `include` lists.
#![cfg(not(target_arch = "wasm32"))]

use std::process::Command;

fn listed(package: &str) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args([
            "package",
            "--list",
            "--allow-dirty",
            "--offline",
            "-p",
            package,
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "cargo package --list -p {package}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

fn assert_only_what_users_need(package: &str, files: &[String], needed: &[&str]) {
    for file in needed {
        assert!(
            files.iter().any(|f| f == file),
            "{package}: {file} missing from {files:?}"
        );
    }
    let unwanted_dirs = [
        "bench/",
        "scripts/",
        "www/",
        "examples/",
        "node_modules/",
        ".ci/",
        "tests/",
        "gateway/",
        "js/",
    ];
    for file in files {
        assert!(
            !unwanted_dirs.iter().any(|d| file.starts_with(d))
                && !file.contains("results/")
                && !file.ends_with(".png"),
            "{package} would publish {file}"
        );
    }
}

#[test]
fn the_crate_publishes_its_sources_docs_and_licences_only() {
    let files = listed("redge");
    assert_only_what_users_need(
        "redge",
        &files,
        &[
            "Cargo.toml",
            "README.md",
            "LICENSE-MIT",
            "LICENSE-APACHE",
            "CHANGELOG.md",
            "src/lib.rs",
        ],
    );
}

#[test]
fn the_gateway_publishes_its_sources_docs_and_licences_only() {
    let files = listed("redge-gateway");
    assert_only_what_users_need(
        "redge-gateway",
        &files,
        &[
            "Cargo.toml",
            "README.md",
            "LICENSE-MIT",
            "LICENSE-APACHE",
            "src/main.rs",
        ],
    );
}
