//! The one "held locally, else ask the control plane" flow behind every call that takes or
//! frees a seat (native validate, LicenseSpring activate and deactivate): a device that holds a
//! seat in the current state is answered from memory by the caller; anything else goes to the
//! control plane's authority over the cluster link, and the answer is applied to the store at
//! once, so this data plane serves the new seat without waiting for the delta that will also
//! bring it.

use license_shared::protocol::{ActivationGranted, ActivationRequest, AuthorityError, Change};
use license_shared::{License, LicenseKey};

use super::PublicState;

/// Asks the control plane for a seat for a device the current state does not know on this
/// license; serves the granted seat at once.
pub(super) async fn forward_activation(
    state: &PublicState,
    request: ActivationRequest,
) -> Result<ActivationGranted, AuthorityError> {
    let granted = state
        .link
        .activate(request, state.activation_timeout)
        .await?;
    state
        .store
        .apply_entity(Change::License(granted.license.clone()));
    Ok(granted)
}

/// Asks the control plane to free a device's seat; serves the license without it at once.
pub(super) async fn forward_deactivation(
    state: &PublicState,
    license_key: LicenseKey,
    device_id: String,
) -> Result<License, AuthorityError> {
    let license = state
        .link
        .deactivate(license_key, device_id, state.activation_timeout)
        .await?;
    state.store.apply_entity(Change::License(license.clone()));
    Ok(license)
}
