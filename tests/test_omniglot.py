"""Loading Omniglot: layouts, verification, caching, and clear errors."""

from __future__ import annotations

import io
import shutil
import zipfile

import numpy as np
import pytest

from conftest import png_bytes, write_tree
from episodes import UsageError, load_omniglot


@pytest.fixture(scope="module")
def small_zip_root(tmp_path_factory):
    return write_tree(tmp_path_factory.mktemp("small"), {"images_background": 2, "images_evaluation": 1}, size=105)


def test_subset_loads_with_names_and_ink_up(small_zip_root):
    store = load_omniglot(small_zip_root, download=False, verify=False)
    assert store.images.shape == (6, 20, 28, 28) and store.images.dtype == np.uint8
    assert list(store.characters) == sorted(store.characters)
    assert store.background.sum() == 4
    # Blots are 30% ink on white: after inversion most pixels are dark (background=0).
    assert store.images.mean() < 128


def test_ink_is_high_and_background_zero(tmp_path):
    pixels = np.ones((105, 105), dtype=bool)
    pixels[40:60, 40:60] = False  # a black square of ink on white
    for name, n in (("images_background", 1), ("images_evaluation", 1)):
        folder = tmp_path / name / "Alpha" / "character01"
        folder.mkdir(parents=True)
        for d in range(1, 21):
            (folder / f"0001_{d:02d}.png").write_bytes(png_bytes(pixels))
    store = load_omniglot(tmp_path, download=False, verify=False)
    img = store.images[0, 0]
    assert img[0, 0] == 0 and img[14, 14] == 255


def test_extracted_folders_equal_zips(small_zip_root, tmp_path):
    for name in ("images_background", "images_evaluation"):
        with zipfile.ZipFile(small_zip_root / f"{name}.zip") as z:
            z.extractall(tmp_path)
    from_zip = load_omniglot(small_zip_root, download=False, verify=False)
    from_dir = load_omniglot(tmp_path, download=False, verify=False)
    assert from_zip.characters == from_dir.characters
    np.testing.assert_array_equal(from_zip.images, from_dir.images)


def test_second_load_comes_from_cache(small_zip_root, monkeypatch):
    first = load_omniglot(small_zip_root, download=False, verify=False)
    import episodes.omniglot as om

    monkeypatch.setattr(om, "decode_png", lambda *a: pytest.fail("decoded again instead of using the cache"))
    second = load_omniglot(small_zip_root, download=False, verify=False)
    np.testing.assert_array_equal(first.images, second.images)


def test_incomplete_copy_is_refused_when_verifying(small_zip_root):
    with pytest.raises(UsageError, match="1623|964|alphabets"):
        load_omniglot(small_zip_root, download=False)


def test_missing_root_names_the_setting(tmp_path):
    with pytest.raises(UsageError, match="OMNIGLOT_ROOT"):
        load_omniglot(tmp_path / "nowhere", download=False)


def test_env_variable_is_used(small_zip_root, monkeypatch):
    monkeypatch.setenv("OMNIGLOT_ROOT", str(small_zip_root))
    assert len(load_omniglot(download=False, verify=False)) == 6


def test_truncated_zip_is_refused(small_zip_root, tmp_path):
    for name in ("images_background", "images_evaluation"):
        data = (small_zip_root / f"{name}.zip").read_bytes()
        (tmp_path / f"{name}.zip").write_bytes(data[: len(data) // 2])
    with pytest.raises(UsageError, match="not a readable zip"):
        load_omniglot(tmp_path, download=False, verify=False)


def test_corrupt_member_is_refused(small_zip_root, tmp_path):
    for name in ("images_background", "images_evaluation"):
        shutil.copy(small_zip_root / f"{name}.zip", tmp_path / f"{name}.zip")
    path = tmp_path / "images_background.zip"
    data = bytearray(path.read_bytes())
    # Flip bytes inside the first stored PNG's data (after its local header).
    data[200:210] = bytes(b ^ 0xFF for b in data[200:210])
    path.write_bytes(bytes(data))
    with pytest.raises(UsageError, match="images_background.zip"):
        load_omniglot(tmp_path, download=False, verify=False)


def test_wrong_layout_is_refused(tmp_path):
    folder = tmp_path / "images_background" / "character01"  # no alphabet level
    folder.mkdir(parents=True)
    (folder / "0001_01.png").write_bytes(png_bytes(np.ones((8, 8), bool)))
    (tmp_path / "images_evaluation").mkdir()
    with pytest.raises(UsageError, match="layout"):
        load_omniglot(tmp_path, download=False, verify=False)


def test_full_count_synthetic_tree_verifies(synthetic_root):
    store = load_omniglot(synthetic_root, download=False)
    assert len(store) == 1623 and store.background.sum() == 964


class _FakeResponse:
    def __init__(self, payload: bytes):
        self.payload = payload

    def read(self):
        return self.payload

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_download_is_md5_checked_against_the_originals(tmp_path, monkeypatch):
    import episodes.omniglot as om

    seen = []
    monkeypatch.setattr(om.urllib.request, "urlopen", lambda url, timeout: seen.append(url) or _FakeResponse(b"not a zip"))
    with pytest.raises(UsageError, match="md5"):
        load_omniglot(tmp_path / "fresh")
    assert seen and seen[0].endswith("images_background.zip") and "brendenlake/omniglot" in seen[0]
    assert not (tmp_path / "fresh" / "images_background.zip").exists()  # nothing unverified is kept


def test_offline_download_failure_names_the_setting(tmp_path, monkeypatch):
    import episodes.omniglot as om

    def offline(url, timeout):
        raise OSError("network is unreachable")

    monkeypatch.setattr(om.urllib.request, "urlopen", offline)
    with pytest.raises(UsageError, match="OMNIGLOT_ROOT"):
        load_omniglot(tmp_path / "fresh")


def test_nearest_is_pillows_default_resize_of_the_1bit_png_inverted():
    from PIL import Image

    from episodes.omniglot import decode_png

    png = png_bytes(np.random.default_rng(1).random((105, 105)) > 0.3)
    nearest = decode_png(png, 28, "nearest")
    with Image.open(io.BytesIO(png)) as im:
        assert im.mode == "1"
        # What the ProtoNets/MAML code call: the default filter on a mode "1" image.
        papers = 255 - np.asarray(im.resize((28, 28)).convert("L"), dtype=np.uint8)
    np.testing.assert_array_equal(nearest, papers)
    assert set(np.unique(nearest)) <= {0, 255}


def test_nearest_store_is_0_or_255_and_differs_from_lanczos(small_zip_root):
    lanczos = load_omniglot(small_zip_root, download=False, verify=False)
    nearest = load_omniglot(small_zip_root, download=False, verify=False, resize="nearest")
    assert (lanczos.resize, nearest.resize) == ("lanczos", "nearest")
    assert set(np.unique(nearest.images)) == {0, 255}
    assert len(np.unique(lanczos.images)) > 2 and (lanczos.images != nearest.images).any()
    assert nearest.characters == lanczos.characters and nearest.source == lanczos.source


def test_each_resize_has_its_own_cache_and_lanczos_keeps_the_old_name(small_zip_root, monkeypatch):
    import episodes.omniglot as om

    load_omniglot(small_zip_root, download=False, verify=False)
    load_omniglot(small_zip_root, download=False, verify=False, resize="nearest")
    names = sorted(p.name for p in om.cache_dir().glob("omniglot-28px-*.npz"))
    key = load_omniglot(small_zip_root, download=False, verify=False).source
    assert f"omniglot-28px-{key}.npz" in names and f"omniglot-28px-nearest-{key}.npz" in names
    monkeypatch.setattr(om, "decode_png", lambda *a: pytest.fail("decoded again instead of using the cache"))
    again = load_omniglot(small_zip_root, download=False, verify=False, resize="nearest")
    assert again.resize == "nearest" and set(np.unique(again.images)) == {0, 255}


def test_a_cache_written_before_resize_existed_reads_as_lanczos(small_zip_root, monkeypatch):
    import episodes.omniglot as om

    store = load_omniglot(small_zip_root, download=False, verify=False)
    path = om.cache_dir() / om.cache_name(28, store.source, "lanczos")
    with np.load(path) as z:
        old = {k: z[k] for k in z.files if k != "resize"}
    np.savez(path, **old)  # the old format: no resize field
    monkeypatch.setattr(om, "decode_png", lambda *a: pytest.fail("decoded again instead of using the cache"))
    assert load_omniglot(small_zip_root, download=False, verify=False).resize == "lanczos"


def test_unknown_resize_is_refused_before_any_work(tmp_path):
    with pytest.raises(UsageError, match="unknown resize 'bicubic'; choose one of lanczos, nearest"):
        load_omniglot(tmp_path / "nowhere", download=False, resize="bicubic")
