//! Builds a filter crate for `wasm32-wasip1` on demand, so that tests and
//! benches can run small filters written for them without a separate step.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Builds the cdylib crate at `manifest` in release mode for
/// `wasm32-wasip1` and returns the path of its `.wasm`. Build output goes
/// to `<target dir>/testkit-filters`, apart from the workspace's own.
pub fn wasip1_filter(manifest: &Path) -> Result<PathBuf, String> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
        .join("testkit-filters");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--quiet",
            "--target",
            "wasm32-wasip1",
            "--manifest-path",
        ])
        .arg(manifest)
        .arg("--target-dir")
        .arg(&target)
        .status()
        .map_err(|e| format!("running cargo: {e}"))?;
    if !status.success() {
        return Err(format!("building {} failed", manifest.display()));
    }
    let name = std::fs::read_to_string(manifest)
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("name = ")
                    .map(|n| n.trim_matches('"').replace('-', "_"))
            })
        })
        .ok_or_else(|| format!("{}: no package name", manifest.display()))?;
    Ok(target
        .join("wasm32-wasip1/release")
        .join(format!("{name}.wasm")))
}

/// The manifest of one of the testkit's own filters (`probe`, `noop`, `floor`).
pub fn own_filter(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/filters")
        .join(name)
        .join("Cargo.toml")
}
