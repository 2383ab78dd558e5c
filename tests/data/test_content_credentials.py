"""C2PA Content Credentials: a sampled PNG carries a manifest signed with a local identity, which c2pa-python's own
reader validates, names as made by a trained model and finds broken after any edit of the file; bad identities and
outputs that cannot be signed are refused before anything is drawn."""
import datetime
import json
import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

import genloom as gl
from genloom.cli import main
from genloom.data.content_credentials import (CA_FILE, CHAIN_FILE, KEY_FILE, ContentSigner, Credentials,
                                              has_manifest, make_identity, read_credentials)
from genloom.data.sample_files import WRITERS
from genloom.errors import GenloomError

pytest.importorskip("c2pa")
ORIGIN = {"generator": "genloom test", "run": "runs/x", "seed": 7}


@pytest.fixture(scope="module")
def identity(tmp_path_factory):
    return make_identity(tmp_path_factory.mktemp("c2pa") / "identity")


def _rewrite_chunks(path, change):
    """The PNG at `path` with each chunk's (kind, body) passed through `change`, CRCs made right: a valid PNG whose
    C2PA manifest chunk is kept as it was."""
    data = path.read_bytes()
    out, position = [data[:8]], 8
    while position < len(data):
        length, kind = struct.unpack(">I", data[position:position + 4])[0], data[position + 4:position + 8]
        body = change(kind, data[position + 8:position + 8 + length])
        out.append(struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body)))
        position += 12 + length
    path.write_bytes(b"".join(out))


def _flip_a_pixel(kind, body):
    if kind != b"IDAT":  # one IDAT in these small images
        return body
    raw = bytearray(zlib.decompress(body))
    raw[1] ^= 0xFF  # the first pixel of the first row (after its filter byte)
    return zlib.compress(bytes(raw))


def _signed_grid(tmp_path, identity, name="grid.png"):
    images = np.random.default_rng(0).integers(0, 256, (4, 16, 16, 1), dtype=np.uint8)
    with WRITERS[".png"](tmp_path / name, 4, ORIGIN, ContentSigner.load(identity)) as writer:
        writer.write(images)
    return tmp_path / name


def test_a_signed_png_validates_and_says_a_model_made_it(identity, tmp_path):
    path = _signed_grid(tmp_path, identity)
    credentials = read_credentials(path)
    assert credentials.state == "Valid" and credentials.failures == () and credentials.made_by_a_model
    assert credentials.signer == "genloom local signer" and "key" not in repr(ContentSigner.load(identity))
    assert {key: credentials.record[key] for key in ORIGIN} == ORIGIN
    assert credentials.record["grid"] == {"images": 4, "tile": [16, 16]}
    assert read_credentials(path, identity / CA_FILE).state == "Trusted"  # the local CA as a trust anchor


def test_the_manifest_is_titled_with_the_files_own_name(identity, tmp_path):
    import c2pa

    with open(_signed_grid(tmp_path, identity, "mine.png"), "rb") as handle, c2pa.Reader("image/png", handle) as reader:
        store = json.loads(reader.json())
    assert store["manifests"][store["active_manifest"]]["title"] == "mine.png"  # not its staging name


def test_another_ca_does_not_vouch_for_the_signer(identity, tmp_path):
    other = make_identity(tmp_path / "other")
    credentials = read_credentials(_signed_grid(tmp_path, identity), other / CA_FILE)
    assert credentials.state == "Valid" and "not under the CA given" in credentials.describe()


def test_a_bad_trust_anchor_is_one_line(identity, tmp_path):
    path = _signed_grid(tmp_path, identity)
    (tmp_path / "junk.pem").write_bytes(b"\xff\xfe not text")
    (tmp_path / "plain.pem").write_text("no certificate here")
    for anchor, message in ((tmp_path / "absent.pem", "cannot read the CA certificate .*absent.pem"),
                            (tmp_path / "junk.pem", "cannot read the CA certificate .*not text"),
                            (tmp_path / "plain.pem", "holds no PEM certificate")):
        with pytest.raises(GenloomError, match=message):
            read_credentials(path, anchor)


def test_an_unsigned_png_has_no_credentials(tmp_path):
    Image.new("L", (8, 8)).save(tmp_path / "plain.png")
    assert not has_manifest(tmp_path / "plain.png") and read_credentials(tmp_path / "plain.png") is None


@pytest.mark.parametrize("edit", ["a pixel", "the provenance text"])
def test_any_edit_after_signing_breaks_the_manifest(identity, tmp_path, edit):
    path = _signed_grid(tmp_path, identity)
    if edit == "a pixel":
        _rewrite_chunks(path, _flip_a_pixel)
    else:
        _rewrite_chunks(path, lambda kind, body: body.replace(b'"seed": 7', b'"seed": 8') if kind == b"tEXt" else body)
    assert has_manifest(path)
    credentials = read_credentials(path)
    assert credentials.state == "Invalid" and "assertion.dataHash.mismatch" in credentials.failures


def test_each_png_of_a_folder_is_signed_with_its_index(trained_run, identity, tmp_path):
    gl.load(trained_run).sample_to(tmp_path / "images", 3, signer=ContentSigner.load(identity), progress=False)
    for index in range(3):
        credentials = read_credentials(tmp_path / "images" / f"{index:06d}.png")
        assert credentials.state == "Valid" and credentials.record["index"] == index


def test_a_spectrogram_grid_is_signed(signal_run, identity, tmp_path):
    gl.load(signal_run).sample_to(tmp_path / "sounds.png", 2, signer=ContentSigner.load(identity), progress=False)
    assert read_credentials(tmp_path / "sounds.png").state == "Valid"


def test_without_provenance_the_manifest_carries_no_record(identity, tmp_path):
    with WRITERS[".png"](tmp_path / "bare.png", 1, None, ContentSigner.load(identity)) as writer:
        writer.write(np.zeros((1, 8, 8, 1), dtype=np.uint8))
    credentials = read_credentials(tmp_path / "bare.png")
    assert credentials.state == "Valid" and credentials.record is None and credentials.made_by_a_model


def test_an_identity_is_never_overwritten_and_its_key_is_private(identity, tmp_path):
    assert sorted(os.listdir(identity)) == sorted([CA_FILE, CHAIN_FILE, KEY_FILE])
    assert os.stat(identity / KEY_FILE).st_mode & 0o777 == 0o600
    key = (identity / KEY_FILE).read_bytes()
    with pytest.raises(GenloomError, match="is a folder with files in it: make a new identity in a new or empty"):
        make_identity(identity)
    assert (identity / KEY_FILE).read_bytes() == key
    (tmp_path / "a-file").write_text("")
    with pytest.raises(GenloomError, match="a file of that name is there"):
        make_identity(tmp_path / "a-file")


def _self_signed(folder):
    """A certificate C2PA refuses: its own issuer."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "me")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
                   .sign(key, hashes.SHA256()))
    folder.mkdir()
    (folder / CHAIN_FILE).write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (folder / KEY_FILE).write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                      serialization.NoEncryption()))
    return folder


def test_bad_identities_and_unsignable_files_are_refused(identity, tmp_path):
    with pytest.raises(GenloomError, match="has no chain.pem or signer.key: .*genloom c2pa-cert"):
        ContentSigner.load(tmp_path / "missing")
    with pytest.raises(GenloomError, match=r"C2PA refuses the signing identity .*self-signed"):
        ContentSigner.load(_self_signed(tmp_path / "self-signed"))
    with pytest.raises(GenloomError, match="samples.csv is not one .* write PNGs, or sign nothing"):
        WRITERS[".csv"](tmp_path / "samples.csv", 1, ORIGIN, ContentSigner.load(identity))


def test_sample_signs_and_provenance_checks(trained_run, identity, tmp_path, capsys):
    grid = tmp_path / "grid.png"
    assert main(["sample", trained_run, "-n", "4", "-o", str(grid), "--c2pa-cert", str(identity), "--quiet"]) == 0
    assert main(["provenance", str(grid)]) == 0
    out = capsys.readouterr().out
    assert "c2pa            Valid, made by a trained model: signed by genloom local signer (not on a trust list" in out
    assert main(["provenance", str(grid), "--c2pa-trust", str(identity / CA_FILE)]) == 0
    assert "Trusted, made by a trained model" in capsys.readouterr().out
    _rewrite_chunks(grid, lambda kind, body: body.replace(b'"seed": 0', b'"seed": 1') if kind == b"tEXt" else body)
    assert main(["provenance", str(grid)]) == 2
    assert "grid.png's C2PA manifest does not validate (assertion.dataHash.mismatch)" in capsys.readouterr().err


def test_an_expired_signature_is_not_called_an_edit(trained_run, identity, tmp_path, capsys, monkeypatch):
    grid = tmp_path / "grid.png"
    gl.load(trained_run).sample_to(grid, 4, signer=ContentSigner.load(identity), progress=False)
    expired = Credentials("Invalid", "genloom local signer", ("signingCredential.expired",), None, True, False)
    monkeypatch.setattr("genloom.data.content_credentials.read_credentials", lambda *args: expired)
    assert main(["provenance", str(grid)]) == 2
    assert "the content is as signed, but the signature no longer holds" in capsys.readouterr().err


def test_sample_refuses_before_drawing(trained_run, biased_table_run, identity, tmp_path, capsys, monkeypatch):
    drawn = []
    monkeypatch.setattr(gl.Model, "sample_to", lambda *args, **kwargs: drawn.append(1))
    assert main(["sample", trained_run, "-o", str(tmp_path / "x.npy"), "--c2pa-cert", str(identity)]) == 2
    assert "x.npy is not one" in capsys.readouterr().err
    assert main(["sample", biased_table_run, "--c2pa-cert", str(identity)]) == 2
    assert "table samples are not written as PNGs: drop --c2pa-cert" in capsys.readouterr().err
    assert main(["sample", trained_run, "-o", str(tmp_path / "x.png"), "--c2pa-cert", str(tmp_path)]) == 2
    assert "has no chain.pem or signer.key" in capsys.readouterr().err
    assert drawn == [] and not (tmp_path / "x.png").exists()
    Image.new("L", (8, 8)).save(tmp_path / "plain.png")
    (tmp_path / "plain.png.provenance.json").write_text('{"content_sha256": "0"}')
    assert main(["provenance", str(tmp_path / "plain.png"), "--c2pa-trust", str(identity / CA_FILE)]) == 2
    assert "carries no C2PA manifest for --c2pa-trust to check" in capsys.readouterr().err
