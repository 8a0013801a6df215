"""serve's speedtest-mini and LibreSpeed paths, byte for byte, with raw HTTP."""

from __future__ import annotations

import json
import re

import httpx
import pytest

from giga_netcheck.server.app import ServerConfig, ServerThread
from giga_netcheck.server.compat import MIB


def _get(url: str, **kw) -> httpx.Response:
    return httpx.get(url, timeout=10, trust_env=False, **kw)


def test_mini_page_names_the_upload_extension_as_speedtest_cli_reads_it(server):
    page = _get(server.url + "/").text
    assert re.findall('upload_?[Ee]xtension: "([^"]+)"', page) == ["php"]


def test_mini_paths(server):
    assert _get(server.url + "/speedtest/latency.txt?x=1.0").text.startswith("test=test")
    assert _get(server.url + "/speedtest/upload.php").text == "size=0"
    r = _get(server.url + "/speedtest/random350x350.jpg?x=1.0")
    assert r.status_code == 200 and len(r.content) == 2 * 350 * 350
    assert _get(server.url + "/speedtest/random9999x9999.jpg").status_code == 404
    assert _get(server.url + "/speedtest/random350x500.jpg").status_code == 404
    body = b"content1=" + b"0" * 100_000
    r = httpx.post(server.url + "/speedtest/upload.php?x=1", content=body, trust_env=False)
    assert r.text == f"size={len(body)}"


def test_offline_speedtest_config_and_server_list(server):
    cfg = _get(server.url + "/speedtest-config.php").text
    assert '<client ip="127.0.0.1"' in cfg and 'threadsperurl="4"' in cfg
    lst = _get(server.url + "/speedtest-servers-static.php?threads=8").text
    host = server.url.split("//", 1)[1]
    assert f'url="http://{host}/speedtest/upload.php"' in lst and 'id="1"' in lst


@pytest.mark.parametrize("prefix", ["/backend/", "/"])
@pytest.mark.parametrize("ext", [".php", ""])
def test_librespeed_backend_paths(server, prefix, ext):
    base = server.url + prefix
    r = _get(f"{base}garbage{ext}?r=0.5&ckSize=3")
    assert r.status_code == 200 and len(r.content) == 3 * MIB
    assert len(_get(f"{base}garbage{ext}").content) == 4 * MIB  # garbage.php's default
    r = httpx.post(f"{base}empty{ext}?r=0.1", content=b"x" * 300_000, trust_env=False)
    assert r.status_code == 200 and r.content == b"" and r.headers["connection"] == "keep-alive"
    assert _get(f"{base}empty{ext}").content == b""
    assert _get(f"{base}getIP{ext}").text == "127.0.0.1"
    doc = json.loads(_get(f"{base}getIP{ext}?isp=true&distance=km").text)
    assert doc["processedString"].startswith("127.0.0.1") and "rawIspInfo" in doc


def test_garbage_cksize_is_bounded_by_librespeed_and_by_the_server_cap():
    with ServerThread(ServerConfig(host="127.0.0.1", port=0, max_download_bytes=5 * MIB)) as s:
        assert len(_get(s.url + "/backend/garbage.php?ckSize=99999").content) == 5 * MIB
        assert len(_get(s.url + "/backend/garbage.php?ckSize=-3").content) == 4 * MIB


def test_librespeed_cors_and_preflight(server):
    r = _get(server.url + "/backend/garbage.php?cors=true&ckSize=1")
    assert r.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-origin" not in _get(server.url + "/backend/empty.php").headers
    r = httpx.request("OPTIONS", server.url + "/backend/empty.php?cors=true", trust_env=False)
    assert r.status_code == 200 and r.headers["access-control-allow-methods"] == "GET, POST"


def test_compat_paths_keep_the_connection_and_other_paths_still_404(server):
    with httpx.Client(trust_env=False) as c:
        for _ in range(3):
            assert c.get(server.url + "/backend/empty.php").status_code == 200
            assert c.get(server.url + "/speedtest/latency.txt").status_code == 200
        assert c.get(server.url + "/backend/nothing.php").status_code == 404
        assert c.get(server.url + "/download?bytes=10").content.__len__() == 10
