//! Phase 4, check_license (LicenseSpring, HMAC-authenticated, signed answer) against verify in
//! turns on data plane 1; skipped when the endpoint answers 404 `not_found`.

use std::time::SystemTime;

use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::cluster::DataPlane;
use crate::report::{Report, Verdict, thousands};
use crate::stats::median;
use crate::synthetic::DEVICE;
use crate::wrk::{self, Load, Mode, Outcome};

use super::{LicenseSet, Run, join, rates};

/// LicenseSpring's request signature for `date`.
fn authorization(api_key: &str, shared_key: &str, date: &str) -> anyhow::Result<String> {
    let mut mac = Hmac::<Sha256>::new_from_slice(shared_key.as_bytes())
        .map_err(|_| anyhow::anyhow!("bad HMAC key"))?;
    mac.update(format!("licenseSpring\ndate: {date}").as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    Ok(format!(
        "algorithm=\"hmac-sha256\",headers=\"date\",signature=\"{signature}\",apiKey=\"{api_key}\""
    ))
}

/// Measures check_license against verify on `dp`, or reports why it cannot.
pub(super) async fn measure(
    run: &mut Run<'_>,
    dp: &DataPlane,
    set: &LicenseSet,
) -> anyhow::Result<()> {
    let (options, setup, script) = (run.options, run.setup, run.script);
    let report = &mut *run.report;
    let (credential, keys, keys_file) =
        (set.credential.as_ref(), &set.keys, set.keys_file.as_path());
    const FIGURE: &str = "LicenseSpring check_license throughput (HMAC auth, signed answer)";
    let skip = |report: &mut Report, why: &str| {
        report.row(
            FIGURE,
            format!("placeholder: {why}"),
            "report it, and its cost vs verify",
            Verdict::Skipped,
        );
    };
    let Some(credential) = credential else {
        skip(report, "the control plane has no /api/credentials");
        return Ok(());
    };
    let (Some(api_key), Some(shared_key)) = (
        credential["apiKey"].as_str(),
        credential["sharedKey"].as_str(),
    ) else {
        skip(report, "the credential answer has no apiKey/sharedKey");
        return Ok(());
    };
    let signed = || -> anyhow::Result<(String, String)> {
        let date = httpdate::fmt_http_date(SystemTime::now());
        let authorization = authorization(api_key, shared_key, &date)?;
        Ok((date, authorization))
    };
    let (date, auth) = signed()?;
    let probe = setup
        .client
        .get(format!(
            "{}/api/v4/check_license?product=bench&license_key={}&hardware_id={DEVICE}",
            dp.public_url, keys[0]
        ))
        .header("Date", &date)
        .header("Authorization", &auth)
        .send()
        .await?;
    let status = probe.status().as_u16();
    let body: Value = probe.json().await.unwrap_or(Value::Null);
    if status == 404 && body["code"] == "not_found" {
        skip(
            report,
            "the data plane answers 404 (endpoint not built yet)",
        );
        return Ok(());
    }
    if status != 200 {
        skip(report, &format!("the probe answered {status}: {body}"));
        return Ok(());
    }
    let mut verify = Vec::new();
    let mut check = Vec::new();
    for _ in 0..options.rounds {
        let (date, authorization) = signed()?;
        let base = Load {
            url: dp.public_url.clone(),
            mode: Mode::Verify,
            keys: keys_file.to_owned(),
            threads: options.threads,
            connections: options.connections,
            duration: options.duration,
            delay_ms: 0,
        };
        verify.push(wrk::run(&base, script, dp.process.pid()).await?);
        let signed_load = Load {
            mode: Mode::Check {
                product: "bench".to_owned(),
                device: DEVICE.to_owned(),
                date,
                authorization,
            },
            ..base
        };
        check.push(wrk::run(&signed_load, script, dp.process.pid()).await?);
    }
    let ratio = median(
        &check
            .iter()
            .zip(&verify)
            .map(|(c, v)| c.rate() / v.rate())
            .collect::<Vec<_>>(),
    );
    let errors: u64 = check.iter().map(Outcome::errors).sum();
    report.row(
        FIGURE,
        format!(
            "{} req/s = {ratio:.2}× verify in the same rounds{}",
            thousands(median(&rates(&check)) as u64),
            if errors > 0 {
                format!(" ({errors} errors)")
            } else {
                String::new()
            }
        ),
        "report it, and its cost vs verify",
        Verdict::Info,
    );
    report.detail(format!(
        "check_license: {} req/s per round (verify alongside: {}); server CPU per request {} (verify {}).",
        join(check.iter().map(|o| thousands(o.rate() as u64))),
        join(verify.iter().map(|o| thousands(o.rate() as u64))),
        join(check.iter().map(|o| o.server_cpu_us_per_request.map_or("?".to_owned(), |u| format!("{u:.1} µs")))),
        join(verify.iter().map(|o| o.server_cpu_us_per_request.map_or("?".to_owned(), |u| format!("{u:.1} µs")))),
    ));
    Ok(())
}
