//! `eo list`: what can be checked.

use crate::UsageError;
use eo_models::catalog;
use std::process::ExitCode;

pub fn run(json: bool) -> Result<ExitCode, UsageError> {
    let infos: Vec<_> = eo_conformance::catalog::all()
        .iter()
        .map(|m| m.info())
        .collect();
    if json {
        let text = serde_json::to_string_pretty(&serde_json::json!({ "models": infos }))
            .map_err(|e| UsageError(format!("cannot encode JSON: {e}")))?;
        println!("{text}");
        return Ok(ExitCode::SUCCESS);
    }
    for info in infos {
        println!("{} — {}", info.name, info.about);
        println!("  flags:");
        for f in &info.flags {
            println!("    --{:<28} {} (default {})", f.name, f.help, f.default);
        }
        println!("  properties:");
        for p in &info.properties {
            println!("    {:<22} {:<10} {}", p.name, p.expectation, p.about);
        }
        println!("  variants (expected violation):");
        for v in &info.variants {
            let expected = v.expected_violation.unwrap_or("— (all hold)");
            println!("    {:<28} {:<22} {}", v.name, expected, v.about);
        }
        if !info.configs.is_empty() {
            println!("  configurations (--config NAME; correct protocol, every property holds):");
            for c in &info.configs {
                let scope = match c.scope {
                    catalog::ConfigScope::Table => "table",
                    catalog::ConfigScope::Deep => "--deep",
                };
                let sets = crate::check::flags_for(&c.settings);
                println!("    {:<28} {:<7} {} (sets{sets})", c.name, scope, c.about);
            }
        }
        println!();
    }
    Ok(ExitCode::SUCCESS)
}
