"""Resumable, verified downloads from a real HTTP server on 127.0.0.1 (fetching/download.py)."""

import hashlib
import os

import pytest

from fetching.localhttp import LocalServer, Served
from posebank.core.errors import UsageError
from posebank.fetching.download import DownloadError, download
from posebank.fetching.resources import Resource, resources_of

DATA = os.urandom(3 * (1 << 20) + 12345)  # a few chunks, not a multiple of the chunk size
SHA = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def server():
    with LocalServer() as s:
        yield s


def resource(url, data=DATA, **over) -> Resource:
    return Resource(url=url, filename="archive.zip", sha256=hashlib.sha256(data).hexdigest(), size=len(data),
                    **over)


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".lock"))


def test_a_good_download_is_verified_and_renamed(server, tmp_path):
    url = server.serve("/a.zip", Served(DATA))
    path = download(resource(url), tmp_path / "dl", backoff_s=0)
    assert path == tmp_path / "dl" / "archive.zip"
    assert path.read_bytes() == DATA and hashlib.sha256(path.read_bytes()).hexdigest() == SHA
    assert leftovers(tmp_path / "dl") == ["archive.zip"]
    assert server.ranges("/a.zip") == [None]
    # a verified file is reused without a request
    assert download(resource(url), tmp_path / "dl") == path
    assert len(server.seen) == 1


def test_md5_and_unknown_size(server, tmp_path):
    url = server.serve("/a.zip", Served(DATA))
    r = Resource(url=url, filename="archive.zip", md5=hashlib.md5(DATA).hexdigest())
    assert download(r, tmp_path).read_bytes() == DATA


def test_a_corrupted_download_names_url_and_digests_and_leaves_nothing(server, tmp_path):
    bad = bytearray(DATA)
    bad[1000] ^= 0xFF  # same size, other bytes
    url = server.serve("/a.zip", Served(bytes(bad)))
    with pytest.raises(DownloadError) as e:
        download(resource(url), tmp_path, backoff_s=0)
    message = str(e.value)
    assert url in message and f"expected sha256 {SHA}" in message
    assert f"got {hashlib.sha256(bytes(bad)).hexdigest()}" in message
    assert leftovers(tmp_path) == []  # no .part, no final file


def test_a_dropped_connection_is_resumed_by_the_retry(server, tmp_path):
    n = 1_234_567
    url = server.serve("/a.zip", Served(DATA, drop_after=n))
    path = download(resource(url), tmp_path, retries=2, backoff_s=0)
    assert server.ranges("/a.zip") == [None, f"bytes={n}-"]
    assert [s.status for s in server.seen] == [200, 206]
    assert path.read_bytes() == DATA
    assert leftovers(tmp_path) == ["archive.zip"]


def test_an_interrupted_download_resumes_on_the_rerun(server, tmp_path):
    n = 777_777
    url = server.serve("/a.zip", Served(DATA, drop_after=n))
    with pytest.raises(DownloadError, match=r"connection closed after 777777 of \d+ bytes.*gave up after 1 attempt"):
        download(resource(url), tmp_path, retries=0, backoff_s=0)
    part = tmp_path / "archive.zip.part"
    assert part.read_bytes() == DATA[:n] and not (tmp_path / "archive.zip").exists()
    path = download(resource(url), tmp_path, retries=0)
    assert server.ranges("/a.zip") == [None, f"bytes={n}-"]
    assert path.read_bytes() == DATA and not part.exists()


def test_a_server_ignoring_range_restarts_the_file_cleanly(server, tmp_path):
    url = server.serve("/a.zip", Served(DATA, ignore_range=True))
    (tmp_path / "archive.zip.part").write_bytes(b"x" * 5000)  # wrong bytes: kept, the digest would fail
    path = download(resource(url), tmp_path, retries=0)
    assert server.ranges("/a.zip") == ["bytes=5000-"] and [s.status for s in server.seen] == [200]
    assert path.read_bytes() == DATA


def test_a_complete_part_is_verified_without_downloading_again(server, tmp_path):
    url = server.serve("/a.zip", Served(DATA))
    (tmp_path / "archive.zip.part").write_bytes(DATA)
    assert download(resource(url), tmp_path).read_bytes() == DATA
    assert server.seen == []  # the published size says it is complete; the digest agrees


def test_5xx_is_retried_and_gives_up_after_the_retries(server, tmp_path):
    url = server.serve("/a.zip", Served(DATA, fail_first=2))
    assert download(resource(url), tmp_path, retries=2, backoff_s=0).read_bytes() == DATA
    assert [s.status for s in server.seen] == [503, 503, 200]
    url = server.serve("/b.zip", Served(DATA, fail_first=5))
    with pytest.raises(DownloadError, match=r"HTTP 503 .*gave up after 2 attempts"):
        download(resource(url), tmp_path / "b", retries=1, backoff_s=0)


def test_client_errors_are_final(server, tmp_path):
    url = server.url("/missing.zip")
    with pytest.raises(DownloadError, match=r"/missing\.zip: HTTP 404"):
        download(resource(url), tmp_path, retries=3, backoff_s=0)
    assert len(server.seen) == 1


def test_no_server_is_a_connection_error_after_the_retries(tmp_path):
    with LocalServer() as s:
        url = s.url("/a.zip")
    with pytest.raises(DownloadError, match=r"cannot connect .*gave up after 2 attempts"):
        download(resource(url), tmp_path, retries=1, backoff_s=0, timeout_s=5)


def test_a_server_with_another_file_size_is_refused(server, tmp_path):
    url = server.serve("/a.zip", Served(DATA + b"more"))
    with pytest.raises(DownloadError, match=rf"has {len(DATA) + 4} bytes, the published size is {len(DATA)}"):
        download(resource(url), tmp_path)
    assert leftovers(tmp_path) == []


def test_licensed_downloads_use_the_named_environment_variables(server, tmp_path, monkeypatch):
    url = server.serve("/a.zip", Served(DATA, auth=("ann", "s3cret")))
    r = resource(url, auth_env=("PB_TEST_USER", "PB_TEST_PASSWORD"))
    monkeypatch.delenv("PB_TEST_USER", raising=False)
    monkeypatch.delenv("PB_TEST_PASSWORD", raising=False)
    with pytest.raises(UsageError, match=r"set the environment variables PB_TEST_USER and PB_TEST_PASSWORD"):
        download(r, tmp_path)
    assert server.seen == []
    monkeypatch.setenv("PB_TEST_USER", "ann")
    monkeypatch.setenv("PB_TEST_PASSWORD", "wrong")
    with pytest.raises(DownloadError, match=r"HTTP 401 .*refused the credentials in PB_TEST_USER / PB_TEST_PASSWORD"):
        download(r, tmp_path)
    monkeypatch.setenv("PB_TEST_PASSWORD", "s3cret")
    assert download(r, tmp_path).read_bytes() == DATA
    assert server.seen[-1].authorization.startswith("Basic ")


def test_resource_constants_are_checked():
    good = {"url": "https://example.org/a.zip", "filename": "a.zip", "sha256": "0" * 64}
    assert Resource(**good).algorithm == "sha256"
    for bad in ({"url": "ftp://example.org/a.zip"}, {"filename": "../a.zip"}, {"sha256": "0" * 63},
                {"sha256": "0" * 64, "md5": "0" * 32}, {"sha256": ""}, {"subdir": "../up"}, {"subdir": "/abs"},
                {"size": -1}, {"auth_env": ("ONLY_ONE",)}):
        with pytest.raises(ValueError):
            Resource(**{**good, **bad})


def test_every_registered_dataset_has_downloads_or_instructions():
    """A dataset with RESOURCES lists Resources (published digests); one without says what to download by hand."""
    from posebank import datasets
    from posebank.fetching.resources import instructions_of

    with_resources = set()
    for name in datasets.names():
        module = datasets.get(name)
        found = resources_of(module, module.check_params({}))
        assert all(isinstance(r, Resource) for r in found)
        if found:
            with_resources.add(name)
        else:
            assert "homepage" in instructions_of(module), name
    assert with_resources == {"coco", "mpii"}
    coco = datasets.get("coco")
    assert [r.filename for r in resources_of(coco, coco.check_params({"year": 2014, "splits": ["val"]}))] == [
        "annotations_trainval2014.zip", "val2014.zip"]
