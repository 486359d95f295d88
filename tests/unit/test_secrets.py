import stat

from ocean import secrets


def test_secrets_are_generated_once_and_private(tmp_path):
    path = tmp_path / "secrets.env"
    first = secrets.load_or_create(path)
    assert set(first) == set(secrets.NAMES)
    assert all(len(value) >= 24 for value in first.values())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert secrets.load_or_create(path) == first


def test_a_missing_secret_is_added_and_the_others_kept(tmp_path):
    path = tmp_path / "secrets.env"
    path.write_text("POSTGRES_PASSWORD=kept\n")
    values = secrets.load_or_create(path)
    assert values["POSTGRES_PASSWORD"] == "kept"
    assert values["SHOP_DB_PASSWORD"]
    assert "SHOP_DB_PASSWORD=" in path.read_text()
