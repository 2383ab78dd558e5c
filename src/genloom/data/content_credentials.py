"""C2PA Content Credentials in the PNGs genloom writes: a manifest, signed with the user's certificate, that says
the image was made by a trained model (IPTC's digital source type trainedAlgorithmicMedia, which readers show as
"created with AI") and carries its genloom provenance record; and the reading and checking of one.

c2pa-python (the C2PA SDK's own binding) builds, signs and validates the manifests; `make_identity` writes a local
signing identity (a CA and a signer's certificate under it) with `cryptography`, for trying this out and for
users who vouch for their own images: C2PA readers call its manifests valid but their signer untrusted unless told
to trust its CA (`--c2pa-trust ca.pem`), as a trust list would a public one's. No time-stamp authority is asked
(it runs offline), so a manifest validates while the signer's certificate does (make_identity's: two years)."""
from __future__ import annotations

import datetime
import importlib.util
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from PIL import Image

from .. import __version__
from ..errors import GenloomError
from ..extras import require
from ..files import atomic_folder, check_writable

CHAIN_FILE, KEY_FILE, CA_FILE = "chain.pem", "signer.key", "ca.pem"
PNG = "image/png"
MADE_BY_A_MODEL = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
PROVENANCE_LABEL = "org.genloom.provenance"
CLAIM_SIGNING_USAGE = "1.3.6.1.4.1.62558.2.1"  # C2PA's extended key usage for signing claims
MANIFEST_CHUNK = b"caBX"  # the PNG chunk a C2PA manifest store lives in
UNTRUSTED = "signingCredential.untrusted"  # a reader's failure code for a signer not on its trust list: the state
# says it ("Valid", not "Trusted"), so it is not counted among a manifest's failures
SIGNER_YEARS = 2
NO_THUMBNAIL = {"builder": {"thumbnail": {"enabled": False}}}  # the image is its own; a grid would carry a copy


def c2pa_module() -> Any:
    """c2pa-python, or an error naming the extra that brings it."""
    return require("c2pa", "c2pa", "C2PA Content Credentials")


def can_check() -> bool:
    """Whether c2pa-python is installed, to validate a manifest (a missing extra is no error where none was asked)."""
    return importlib.util.find_spec("c2pa") is not None


@dataclass(frozen=True)
class ContentSigner:
    """A signing identity read from a folder: its certificate chain (the signer's certificate first, then its
    issuers'), chain.pem, and the signer's private key, signer.key, both PEM (ES256: an elliptic-curve P-256 key)."""

    folder: Path
    chain: bytes
    key: bytes = field(repr=False)

    @classmethod
    def load(cls, folder: str | Path) -> ContentSigner:
        """The identity in `folder`, checked by signing a one-pixel PNG: a certificate C2PA refuses is an error
        now, not after the samples are drawn."""
        folder = Path(folder)
        missing = [name for name in (CHAIN_FILE, KEY_FILE) if not (folder / name).is_file()]
        if missing:
            raise GenloomError(f"{folder} has no {' or '.join(missing)}: --c2pa-cert names a folder with the "
                               f"certificate chain ({CHAIN_FILE}) and its key ({KEY_FILE}); make one with "
                               f"`genloom c2pa-cert {folder}`")
        try:
            signer = cls(folder, (folder / CHAIN_FILE).read_bytes(), (folder / KEY_FILE).read_bytes())
        except OSError as error:
            raise GenloomError(f"cannot read the signing identity in {folder}: {error.strerror or error}") from None
        probe = io.BytesIO()
        Image.new("L", (1, 1)).save(probe, format="PNG")
        c2pa = c2pa_module()
        try:
            signer.signed(probe.getvalue(), None, title="probe")
        except c2pa.C2paError as error:
            raise GenloomError(f"C2PA refuses the signing identity in {folder} ({_reason(error)}): it takes an "
                               "ES256 (P-256) key and a chain whose signer's certificate is issued by a CA, not "
                               "self-signed, with the emailProtection or C2PA claim-signing usage; "
                               "`genloom c2pa-cert DIR` makes one") from None
        return signer

    def signed(self, png: bytes, record: Mapping[str, Any] | None, title: str) -> bytes:
        """The PNG `png` with a manifest, titled `title`, that says a model made it, carries `record` (if any)
        and is signed by this identity. Raises c2pa's own error."""
        c2pa = c2pa_module()
        # the record goes as a JSON string: the SDK turns a JSON array of small numbers into CBOR bytes (a grid's
        # tile [16, 16] read back as "EBA=")
        carried = [] if record is None else [{"label": PROVENANCE_LABEL, "data": {"record": json.dumps(dict(record))}}]
        manifest = {"claim_generator_info": [{"name": "genloom", "version": __version__}], "title": title,
                    "format": PNG,
                    "assertions": [{"label": "c2pa.actions",
                                    "data": {"actions": [{"action": "c2pa.created",
                                                          "digitalSourceType": MADE_BY_A_MODEL}]}}, *carried]}
        target = io.BytesIO()
        info = c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, self.chain, self.key, None)
        with c2pa.Settings.from_dict(NO_THUMBNAIL) as settings, c2pa.Context(settings) as context, \
                c2pa.Signer.from_info(info) as signer, c2pa.Builder(manifest, context) as builder:
            builder.sign(signer, PNG, io.BytesIO(png), target)
        return target.getvalue()

    def sign(self, path: Path, record: Mapping[str, Any] | None, title: str) -> None:
        """Sign the PNG at `path` in place, for a file still in its staging place (sample_files.py): `title`, the
        name it will have."""
        c2pa = c2pa_module()
        try:
            path.write_bytes(self.signed(path.read_bytes(), record, title))
        except c2pa.C2paError as error:
            raise GenloomError(f"C2PA could not sign {title} ({_reason(error)})") from None


@dataclass(frozen=True)
class Credentials:
    """What a PNG's C2PA manifest says: its validation state (C2PA's "Invalid", "Valid": intact, from a signer not
    on the trust list, or "Trusted"), its signer, the failures found, the genloom record it carries (if any), and
    whether a CA was given to trust."""

    state: str
    signer: str
    failures: tuple[str, ...]
    record: dict[str, Any] | None
    made_by_a_model: bool
    trust_given: bool

    @property
    def edited(self) -> bool:
        """Whether the file's bytes or the manifest's assertions no longer match what was signed (an expired or
        revoked certificate fails too, with the content intact)."""
        return any(failure.startswith("assertion.") for failure in self.failures)

    def describe(self) -> str:
        """One line: the state, the signer, and whom it is trusted by."""
        if self.state == "Invalid":
            return f"INVALID ({', '.join(self.failures)}), signed by {self.signer}"
        trust = ("under the CA given" if self.state == "Trusted" else
                 "not under the CA given" if self.trust_given else
                 "not on a trust list: give --c2pa-trust CA.pem to check its CA")
        made = ", made by a trained model" if self.made_by_a_model else ""
        return f"{self.state}{made}: signed by {self.signer} ({trust})"


def has_manifest(path: Path) -> bool:
    """Whether a PNG holds a C2PA manifest store chunk (read without c2pa)."""
    with open(path, "rb") as handle:
        handle.read(8)  # the signature
        while len(header := handle.read(8)) == 8:
            length, kind = int.from_bytes(header[:4], "big"), header[4:]
            if kind == MANIFEST_CHUNK:
                return True
            handle.seek(length + 4, os.SEEK_CUR)  # the data and its CRC
    return False


def read_credentials(path: str | Path, trusted_ca: str | Path | None = None) -> Credentials | None:
    """The C2PA credentials of the PNG at `path`, validated (against `trusted_ca`, a PEM file, as a trust
    anchor, if given); None if it has no manifest."""
    path = Path(path)
    if not has_manifest(path):
        return None
    c2pa = c2pa_module()
    settings = {"trust": {"trust_anchors": _trust_anchor(Path(trusted_ca))}} if trusted_ca else {}
    try:
        with c2pa.Settings.from_dict(settings) as options, c2pa.Context(options) as context:
            with open(path, "rb") as handle, c2pa.Reader(PNG, handle, None, context) as reader:
                store, state = json.loads(reader.json()), reader.get_validation_state()
    except c2pa.C2paError as error:
        raise GenloomError(f"{path}'s C2PA manifest cannot be read ({_reason(error)})"
                           + (f", or {trusted_ca} is not a CA certificate in PEM" if trusted_ca else "")) from None
    try:
        return _credentials(store, state, trusted_ca is not None)
    except (KeyError, TypeError, ValueError):
        raise GenloomError(f"{path}'s C2PA manifest is not one genloom can read") from None


def _credentials(store: dict[str, Any], state: str, trust_given: bool) -> Credentials:
    manifest = store["manifests"][store["active_manifest"]]
    assertions = {assertion["label"]: assertion.get("data") for assertion in manifest.get("assertions", [])}
    actions = next((data["actions"] for label, data in assertions.items() if label.startswith("c2pa.actions")), [])
    failures = store.get("validation_results", {}).get("activeManifest", {}).get("failure", [])
    signature = manifest.get("signature_info", {})
    issuer = f" ({signature['issuer']})" if signature.get("issuer") else ""
    record = json.loads(assertions[PROVENANCE_LABEL]["record"]) if PROVENANCE_LABEL in assertions else None
    return Credentials(state, f"{signature.get('common_name', 'an unnamed signer')}{issuer}",
                       tuple(failure["code"] for failure in failures if failure["code"] != UNTRUSTED), record,
                       any(action.get("digitalSourceType") == MADE_BY_A_MODEL for action in actions), trust_given)


def _trust_anchor(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not text"
        raise GenloomError(f"cannot read the CA certificate {path} ({reason}): --c2pa-trust takes a PEM file, as "
                           f"`genloom c2pa-cert` writes {CA_FILE}") from None
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise GenloomError(f"{path} holds no PEM certificate: --c2pa-trust takes a CA certificate in PEM, as "
                           f"`genloom c2pa-cert` writes {CA_FILE}")
    return text


def make_identity(folder: str | Path, name: str = "genloom local signer") -> Path:
    """A new signing identity in `folder` (new, or empty), all of it or nothing: a CA (ca.pem; its key is not
    kept, so it signs nothing else), the signer's certificate under it (chain.pem, with the CA's) and the signer's
    key (signer.key, readable by its owner only)."""
    require("cryptography", "c2pa", "a C2PA signing identity")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

    folder = Path(folder)
    check_writable(folder, folder=True)
    if folder.is_dir() and any(folder.iterdir()):
        raise GenloomError(f"{folder} is a folder with files in it: make a new identity in a new or empty folder")
    now = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)

    def certificate(subject: str, key: Any, issuer: x509.Name, issuer_key: Any, years: int) -> x509.CertificateBuilder:
        return (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
                .issuer_name(issuer).public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=365 * years))
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                               critical=False))

    def usage(signs_certificates: bool) -> x509.KeyUsage:
        return x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                             data_encipherment=False, key_agreement=False, key_cert_sign=signs_certificates,
                             crl_sign=signs_certificates, encipher_only=False, decipher_only=False)

    ca_key, signer_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} CA")])
    ca = (certificate(f"{name} CA", ca_key, ca_name, ca_key, 10)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(usage(True), critical=True).sign(ca_key, hashes.SHA256()))
    signer = (certificate(name, signer_key, ca_name, ca_key, SIGNER_YEARS)
              .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
              .add_extension(usage(False), critical=True)
              .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION,
                                                    ObjectIdentifier(CLAIM_SIGNING_USAGE)]), critical=False)
              .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    key = signer_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    with atomic_folder(folder) as staging:
        descriptor = os.open(staging / KEY_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(key)
        (staging / CA_FILE).write_bytes(ca.public_bytes(pem))
        (staging / CHAIN_FILE).write_bytes(signer.public_bytes(pem) + ca.public_bytes(pem))
    return folder


def _reason(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
