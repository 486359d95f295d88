"""The storefront's fingerprinted assets (stack/shop/ocean_shop/assets.py)."""

from __future__ import annotations

import re
from pathlib import Path

from ocean_shop.assets import IMMUTABLE, Assets, fingerprint


def test_a_changed_asset_gets_a_new_name(tmp_path: Path):
    source = tmp_path / "static"
    source.mkdir()
    (source / "shop.css").write_text("body{color:#000}")
    first = Assets(source).url("shop.css")
    assert re.fullmatch(r"/static/shop\.[0-9a-f]{12}\.css", first)
    assert Assets(source).url("shop.css") == first  # same content, same name
    (source / "shop.css").write_text("body{color:#111}")
    assert Assets(source).url("shop.css") != first


def test_publish_writes_every_version_side_by_side(tmp_path: Path):
    source, www = tmp_path / "static", tmp_path / "www"
    source.mkdir()
    (source / "order.js").write_text("one")
    old = Assets(source)
    assert old.publish(www) == 1 and old.publish(www) == 0
    (source / "order.js").write_text("two")
    new = Assets(source)
    new.publish(www)
    names = sorted(p.name for p in (www / "static").iterdir())
    assert names == sorted({old.manifest["order.js"], new.manifest["order.js"]})
    published = www / "static" / new.manifest["order.js"]
    assert published.read_text() == "two" and published.stat().st_mode & 0o777 == 0o640


def test_the_shipped_assets_and_their_cache_header():
    assets = Assets()
    assert {"shop.css", "order.js"} <= set(assets.manifest)
    assert assets.files[assets.manifest["shop.css"]].media_type.startswith("text/css")
    assert fingerprint("a.css", b"x") == fingerprint("a.css", b"x") != fingerprint("a.css", b"y")
    max_age = int(re.search(r"max-age=(\d+)", IMMUTABLE)[1])
    assert max_age >= 86_400 and "immutable" in IMMUTABLE


def test_the_project_setup_installs_chromium_with_nginx():
    from ocean.runtime import packages
    from ocean.services import BY_NAME

    assert "chromium" in packages.binaries_for([BY_NAME["nginx"]], as_root=True)
    assert "chromium" not in packages.binaries_for([BY_NAME["redis-master"]], as_root=True)
    assert packages.packages_for(["chromium"]) == ["chromium"]
