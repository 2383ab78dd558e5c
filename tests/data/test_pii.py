"""Personal data in tables: found by its form or its column's name, replaced one fake per value, and never
generated once replaced."""
import html

import numpy as np
import pandas as pd
import pytest
from faker import Faker

import genloom as gl
from genloom.cli import main
from genloom.data.pii import anonymise_table, find_personal_columns
from genloom.errors import GenloomError

PERSONAL = {"customer": "name", "contact": "email", "tel": "phone", "home": "street_address", "cc": "card_number",
            "id_no": "national_id"}


def _people(rows: int = 300, seed: int = 1) -> pd.DataFrame:
    fake, rng = Faker(), np.random.default_rng(seed)
    fake.seed_instance(seed)
    regulars = [fake.name() for _ in range(40)]  # a customer has several rows
    return pd.DataFrame({
        "customer": rng.choice(regulars, rows), "contact": [fake.email() for _ in range(rows)],
        "tel": [f"+1-{fake.msisdn()[:3]}-{fake.msisdn()[3:6]}-{fake.msisdn()[6:10]}" for _ in range(rows)],
        "home": [fake.street_address() for _ in range(rows)], "cc": [fake.credit_card_number() for _ in range(rows)],
        "id_no": [fake.ssn() for _ in range(rows)], "city": rng.choice(["Paris", "Lyon", "Nice"], rows),
        "plan": rng.choice(["basic", "plus"], rows), "spend": rng.gamma(2.0, 30.0, rows).round(2)})


def test_each_kind_is_found_by_its_values_and_other_columns_are_left():
    found = find_personal_columns(_people())
    assert {column: personal.kind for column, personal in found.items()} == PERSONAL
    assert all("of its values" in personal.reason for personal in found.values())


def test_card_numbers_read_as_whole_numbers_are_found(tmp_path):
    _people().to_csv(tmp_path / "people.csv", index=False)
    real = pd.read_csv(tmp_path / "people.csv")["cc"]
    assert real.dtype == np.int64  # pandas reads the card numbers as whole numbers
    data = gl.load_data(tmp_path / "people.csv", anonymise=True)
    assert not set(data.values["cc"].astype(str)) & set(real.astype(str))


def test_a_name_column_is_found_by_its_name_when_the_values_cannot_tell():
    frame = pd.DataFrame({"full_name": ["Aiko Tanaka", "Søren Kierkegaard", "Nguyễn Văn An"] * 20,
                          "product_name": ["kettle", "lamp", "desk"] * 20})
    found = find_personal_columns(frame)
    assert list(found) == ["full_name"] and found["full_name"].reason == "by the column's name"


def test_anonymising_keeps_one_fake_per_value_and_no_real_value():
    frame = _people()
    frame.loc[3, "customer"] = None
    replaced, found = anonymise_table(frame)
    assert set(found) == set(PERSONAL)
    for column in PERSONAL:
        assert not set(replaced[column].dropna()) & set(frame[column].dropna())
        pairs = pd.DataFrame({"real": frame[column], "fake": replaced[column]}).dropna().drop_duplicates()
        assert pairs["real"].is_unique and pairs["fake"].is_unique  # one fake per value, and back
    assert pd.isna(replaced.loc[3, "customer"])  # a missing value stays missing
    assert replaced[["city", "plan", "spend"]].equals(frame[["city", "plan", "spend"]])
    assert replaced.equals(anonymise_table(frame)[0])  # the same fakes every time: runs reload their data


def test_a_model_trained_on_anonymised_rows_never_writes_a_real_value(tmp_path, capsys):
    frame = _people()
    data = gl.load_data(frame, anonymise=True)
    assert "anonymised customer: name" in capsys.readouterr().err
    model = gl.Model("vae").fit(data, steps=30, out=tmp_path / "run", progress=False)
    rows = model.sample(10_000, seed=0, progress=False)
    for column in PERSONAL:
        assert not set(rows[column].dropna().astype(str)) & set(frame[column].astype(str)), column


def test_personal_data_is_reported_at_load_and_anonymise_is_a_notice_without_it(capsys):
    gl.load_data(_people())
    assert "holds personal data (customer: name (100% of its values); contact: email" in capsys.readouterr().err
    plain = pd.DataFrame({"x": np.arange(50.0), "kind": ["a", "b"] * 25})
    data = gl.load_data(plain, anonymise=True)
    assert data.values.equals(plain) and "no personal data found" in capsys.readouterr().err
    with pytest.raises(GenloomError, match="anonymise replaces personal data in tables; this is image data"):
        gl.load_data(np.zeros((4, 8, 8, 1), dtype=np.uint8), anonymise=True)


def test_a_loaded_table_is_anonymised_when_asked_and_left_as_it_was(capsys):
    loaded = gl.load_data(_people())
    anonymised = gl.load_data(loaded, anonymise=True)
    assert not set(anonymised.values["contact"]) & set(loaded.values["contact"])
    assert loaded.values["contact"].equals(_people()["contact"]) and not loaded.source["anonymise"]
    assert anonymised.source["anonymise"] is True


def test_train_anonymise_on_the_command_line(tmp_path, capsys):
    _people().to_csv(tmp_path / "people.csv", index=False)
    assert main(["train", str(tmp_path / "people.csv"), "--anonymise", "--family", "vae", "--steps", "2",
                 "--out", str(tmp_path / "run"), "--quiet"]) == 0
    assert "anonymised customer: name" in capsys.readouterr().err
    assert gl.load(tmp_path / "run").record["data"]["source"]["anonymise"] is True
    for page in ("MODEL_CARD.md", "report.html"):  # what was found, and that it was replaced
        text = html.unescape((tmp_path / "run" / page).read_text())
        assert "customer: name (100% of its values)" in text and "replaced by Faker's values before training" in text
    assert main(["train", str(tmp_path / "people.csv"), "--family", "vae", "--steps", "2", "--out",
                 str(tmp_path / "plain"), "--quiet"]) == 0
    card = (tmp_path / "plain" / "MODEL_CARD.md").read_text()
    assert "contact: email" in card and "trained on as it was, so the model can repeat it" in card
    recorded = gl.load(tmp_path / "plain").record["data"]["personal_data"]
    assert recorded["customer"] == "name (100% of its values)" and "city" not in recorded
    model = gl.Model("vae").fit(gl.load_data(_people()), steps=2, progress=False)  # from Python alike
    assert set(model.record["data"]["personal_data"]) == set(recorded)
