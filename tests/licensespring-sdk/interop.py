"""Drives a running data plane with LicenseSpring's official Python SDK, unmodified.

Run by the `licensespring_sdk_works_against_a_data_plane` test, which starts the cluster and
passes what it created in the environment:

  LS_API_DOMAIN   host:port of the data plane's public listener
  LS_API_KEY      api key of a credential for LS_PRODUCT
  LS_SHARED_KEY   its shared key
  LS_PRODUCT      the product's short code
  LS_LICENSE_KEY  a license of that product with maxActivations 1 and no device yet

The SDK verifies every license answer with the `signature_verifier` class it is given; ours
checks the Ed25519 `LicenseSignature` header against the data plane's JWKS. Exits non-zero on
the first failed check.
"""

import base64
import json
import os
import sys
import urllib.request

import jsonschema
from Crypto.Signature import eddsa
from licensespring.api import APIClient
from licensespring.api.error import ClientError
from licensespring.licensefile.object_parser.schema import (
    LICENSE_SCHEMA,
    PRODUCT_DETAILS_SCHEMA,
    PRODUCT_FEATURES_SCHEMA,
)

API_DOMAIN = os.environ["LS_API_DOMAIN"]
API_KEY = os.environ["LS_API_KEY"]
SHARED_KEY = os.environ["LS_SHARED_KEY"]
PRODUCT = os.environ["LS_PRODUCT"]
LICENSE_KEY = os.environ["LS_LICENSE_KEY"]


def b64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def published_keys():
    with urllib.request.urlopen(f"http://{API_DOMAIN}/.well-known/jwks.json") as response:
        jwks = json.load(response)
    return [
        eddsa.import_public_key(b64url(key["x"]))
        for key in jwks["keys"]
        if key["kty"] == "OKP" and key["crv"] == "Ed25519"
    ]


def verifier_for(keys):
    """A SignatureVerifier class (the SDK instantiates it without arguments)."""

    class Ed25519Verifier:
        verified = 0

        def verify_license_signature_v2(self, message, signature_b64):
            if not signature_b64:
                raise ValueError("the answer carries no LicenseSignature header")
            signature = base64.b64decode(signature_b64)
            for key in keys:
                try:
                    eddsa.new(key, "rfc8032").verify(message, signature)
                    Ed25519Verifier.verified += 1
                    return
                except ValueError:
                    continue
            raise ValueError("LicenseSignature does not verify with any published key")

        def verify_license_signature(self, *args):
            raise NotImplementedError("online answers are checked with v2 (the header)")

    return Ed25519Verifier


def client(verifier, shared_key=SHARED_KEY):
    return APIClient(
        api_key=API_KEY,
        shared_key=shared_key,
        api_domain=API_DOMAIN,
        api_protocol="http",
        signature_verifier=verifier,
    )


def expect_error(code, call):
    try:
        call()
    except ClientError as error:
        assert error.code == code, f"expected {code}, got {error!r}"
        assert error.status == 400, f"expected status 400, got {error!r}"
        return
    raise AssertionError(f"expected the SDK to raise {code}")


def check_schema(answer):
    jsonschema.validate(answer, LICENSE_SCHEMA, format_checker=jsonschema.FormatChecker())
    jsonschema.validate(answer["product_features"], PRODUCT_FEATURES_SCHEMA)
    jsonschema.validate(answer["product_details"], PRODUCT_DETAILS_SCHEMA)


def main():
    keys = published_keys()
    assert keys, "the data plane publishes no Ed25519 key"
    verifier = verifier_for(keys)
    sdk = client(verifier)
    checks = 0

    activated = sdk.activate_license(
        product=PRODUCT, license_key=LICENSE_KEY, hardware_id="sdk-device-1", app_ver="2.0.0"
    )
    assert activated["license_key"] == LICENSE_KEY, activated
    assert activated["times_activated"] == 1, activated
    assert activated["license_enabled"] and activated["license_active"], activated
    assert activated["product_details"]["short_code"] == PRODUCT, activated
    check_schema(activated)
    # LicenseSpring's numeric ids are numbers, as the seed's schema says (not nulls).
    assert isinstance(activated["device_id"], int), activated
    assert isinstance(activated["product_details"]["product_id"], int), activated
    checks += 1

    checked = sdk.check_license(product=PRODUCT, license_key=LICENSE_KEY, hardware_id="sdk-device-1")
    assert checked["license_key"] == LICENSE_KEY and not checked["is_expired"], checked
    check_schema(checked)
    assert checked["device_id"] == activated["device_id"], checked
    checks += 1

    # Over the limit (maxActivations 1).
    expect_error(
        "license_activated_max_times",
        lambda: sdk.activate_license(
            product=PRODUCT, license_key=LICENSE_KEY, hardware_id="sdk-device-2"
        ),
    )
    checks += 1

    # An unknown key, a device without a seat, an unknown product.
    expect_error(
        "license_not_found",
        lambda: sdk.check_license(
            product=PRODUCT, license_key="AAAAA-BBBBB-CCCCC-DDDDD-EEEEE", hardware_id="sdk-device-1"
        ),
    )
    expect_error(
        "device_not_found",
        lambda: sdk.check_license(product=PRODUCT, license_key=LICENSE_KEY, hardware_id="sdk-device-2"),
    )
    expect_error(
        "unknown_product",
        lambda: sdk.check_license(product="no-such-product", license_key=LICENSE_KEY, hardware_id="x"),
    )
    checks += 3

    # A wrong shared key.
    expect_error(
        "signature_mismatch",
        lambda: client(verifier, shared_key="not-the-shared-key").check_license(
            product=PRODUCT, license_key=LICENSE_KEY, hardware_id="sdk-device-1"
        ),
    )
    checks += 1

    # The SDK really checks our signature: with someone else's key it refuses the answer.
    stranger = eddsa.import_public_key(bytes.fromhex(
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    ))
    try:
        client(verifier_for([stranger])).check_license(
            product=PRODUCT, license_key=LICENSE_KEY, hardware_id="sdk-device-1"
        )
        raise AssertionError("an answer signed by another key was accepted")
    except ValueError:
        checks += 1

    # Deactivation frees the seat for the second device.
    sdk.deactivate_license(product=PRODUCT, license_key=LICENSE_KEY, hardware_id="sdk-device-1")
    expect_error(
        "device_not_found",
        lambda: sdk.check_license(product=PRODUCT, license_key=LICENSE_KEY, hardware_id="sdk-device-1"),
    )
    second = sdk.activate_license(
        product=PRODUCT, license_key=LICENSE_KEY, hardware_id="sdk-device-2"
    )
    assert second["times_activated"] == 1, second
    checks += 2

    print(f"licensespring SDK interop: {checks} checks passed, "
          f"{verifier.verified} signatures verified")


if __name__ == "__main__":
    try:
        main()
    except Exception:  # noqa: BLE001 - report whatever failed, then fail the test
        import traceback

        traceback.print_exc()
        sys.exit(1)
