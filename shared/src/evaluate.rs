//! The one rule that decides whether a license is valid for a request. The control plane's
//! database-backed endpoints and the data planes' in-memory ones both call [`evaluate`], so a
//! license can never be valid on one and invalid on the other.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::codes;
use crate::model::License;

/// What a client asks about a license.
#[derive(Debug, Clone, Copy)]
pub struct Check<'a> {
    pub now: DateTime<Utc>,
    /// The product the client app belongs to, when it says.
    pub product_id: Option<Uuid>,
    /// The device asking, when it must already be activated.
    pub device_id: Option<&'a str>,
}

impl Check<'_> {
    /// A plain check at `now`: no product, no device.
    pub fn at(now: DateTime<Utc>) -> Self {
        Check {
            now,
            product_id: None,
            device_id: None,
        }
    }

    /// A check at `now` that the license belongs to `product_id`.
    pub fn for_product(now: DateTime<Utc>, product_id: Uuid) -> Self {
        Check {
            product_id: Some(product_id),
            ..Check::at(now)
        }
    }
}

/// Why a license is not valid, most fundamental first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Denial {
    ProductMismatch,
    Revoked,
    Suspended,
    NotYetStarted,
    Expired,
    DeviceNotActivated,
}

impl Denial {
    /// Machine-readable code, shared by every API surface.
    pub fn code(self) -> &'static str {
        match self {
            Denial::ProductMismatch => codes::PRODUCT_MISMATCH,
            Denial::Revoked => codes::LICENSE_REVOKED,
            Denial::Suspended => codes::LICENSE_SUSPENDED,
            Denial::NotYetStarted => codes::LICENSE_NOT_STARTED,
            Denial::Expired => codes::LICENSE_EXPIRED,
            Denial::DeviceNotActivated => codes::DEVICE_NOT_ACTIVATED,
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Denial::ProductMismatch => "the license belongs to another product",
            Denial::Revoked => "the license has been revoked",
            Denial::Suspended => "the license is suspended",
            Denial::NotYetStarted => "the license period has not started yet",
            Denial::Expired => "the license has expired",
            Denial::DeviceNotActivated => "the device is not activated on this license",
        }
    }
}

/// Decides whether `license` is valid for `check`.
pub fn evaluate(license: &License, check: &Check<'_>) -> Result<(), Denial> {
    if check
        .product_id
        .is_some_and(|product_id| product_id != license.product_id)
    {
        return Err(Denial::ProductMismatch);
    }
    match license.status {
        crate::LicenseStatus::Revoked => return Err(Denial::Revoked),
        crate::LicenseStatus::Suspended => return Err(Denial::Suspended),
        crate::LicenseStatus::Active => {}
    }
    if !license.has_started(check.now) {
        return Err(Denial::NotYetStarted);
    }
    if license.is_expired(check.now) {
        return Err(Denial::Expired);
    }
    if check
        .device_id
        .is_some_and(|device_id| !license.is_device_active(device_id))
    {
        return Err(Denial::DeviceNotActivated);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LicenseStatus;
    use crate::model::fixtures;
    use chrono::Duration;

    #[test]
    fn an_active_license_is_valid() {
        let now = Utc::now();
        assert_eq!(evaluate(&fixtures::license(now), &Check::at(now)), Ok(()));
    }

    #[test]
    fn each_denial_is_reported() {
        let now = Utc::now();
        let base = fixtures::license(now);

        let check = Check {
            product_id: Some(Uuid::new_v4()),
            ..Check::at(now)
        };
        assert_eq!(evaluate(&base, &check), Err(Denial::ProductMismatch));
        let check = Check {
            product_id: Some(base.product_id),
            ..Check::at(now)
        };
        assert_eq!(evaluate(&base, &check), Ok(()));

        for (status, denial) in [
            (LicenseStatus::Revoked, Denial::Revoked),
            (LicenseStatus::Suspended, Denial::Suspended),
        ] {
            let license = License {
                status,
                ..base.clone()
            };
            assert_eq!(evaluate(&license, &Check::at(now)), Err(denial));
        }

        let license = License {
            starts_at: Some(now + Duration::hours(1)),
            ..base.clone()
        };
        assert_eq!(
            evaluate(&license, &Check::at(now)),
            Err(Denial::NotYetStarted)
        );
        assert_eq!(
            evaluate(&license, &Check::at(now + Duration::hours(1))),
            Ok(())
        );

        let license = License {
            expires_at: Some(now - Duration::seconds(1)),
            ..base.clone()
        };
        assert_eq!(evaluate(&license, &Check::at(now)), Err(Denial::Expired));
    }

    #[test]
    fn a_device_must_be_activated_when_asked_for() {
        let now = Utc::now();
        let seat = |device_id: &str| crate::model::ActiveDevice {
            device_id: device_id.into(),
            device_name: None,
            activated_at: now,
        };
        let license = License {
            active_devices: vec![seat("laptop"), seat("phone")],
            ..fixtures::license(now)
        };
        let on = |device| Check {
            device_id: Some(device),
            ..Check::at(now)
        };
        assert_eq!(evaluate(&license, &on("phone")), Ok(()));
        assert_eq!(
            evaluate(&license, &on("tablet")),
            Err(Denial::DeviceNotActivated)
        );
    }

    #[test]
    fn revocation_outranks_expiry() {
        let now = Utc::now();
        let license = License {
            status: LicenseStatus::Revoked,
            expires_at: Some(now - Duration::days(1)),
            ..fixtures::license(now)
        };
        assert_eq!(evaluate(&license, &Check::at(now)), Err(Denial::Revoked));
    }
}
