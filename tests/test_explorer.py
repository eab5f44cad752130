"""The style explorer (issue 16): its export signatures (strength, keep colours, artists), and the page itself in a
real headless Chromium against the local server with a tiny exported style-space model at 64 px: sliders (keyboard
and mouse), a reference upload, shareable links, errors in words, and slider-to-picture latency."""

import io
import json
import re
import struct
import subprocess
import sys
import urllib.error
import urllib.request
import zlib

import numpy as np
import pytest
import tensorflow as tf
from conftest import tiny_config
from PIL import Image
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys

from tf_gadn.data import color
from tf_gadn.data.prepare import encode_png
from tf_gadn.explorer import browser
from tf_gadn.explorer.app import ExplorerServer, export_and_serve
from tf_gadn.explorer.random_run import write_random_style_space_run
from tf_gadn.serving import server

# The tests' tiny style-space model at 64 px, the issue's latency size; initial weights (the graph is what is timed,
# not what it learned)
TINY_STYLE_SPACE_64 = tiny_config("style_space_tiny", image_size=64)
LATENCY_TARGET_MS = 300


@pytest.fixture(scope="module")
def served(tmp_path_factory, tiny_dataset):
    """(explorer, local server, exported model dir): the tiny model exported and served on free ports, the page
    offering the tiny data set's drawings."""
    root = tmp_path_factory.mktemp("explorer")
    run = str(root / "run")
    write_random_style_space_run(run, TINY_STYLE_SPACE_64.replace(model_dir=run), num_artists=3)
    local, name, _ = export_and_serve(run, str(root))
    explorer = ExplorerServer(
        f"127.0.0.1:{local.rest_port}", name, str(tiny_dataset), port=0
    ).start()
    yield explorer, local, root / "exports" / name / "1"
    explorer.stop()
    local.stop()


@pytest.fixture(scope="module")
def driver(served):
    chrome = browser.chromium()  # fails, never skips, without Chromium: CI installs it (.ci/run)
    yield chrome
    chrome.quit()


def images(n, size=64, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3)).astype(np.uint8)


def lab_ab(uint8):
    return color.rgb_to_lab(tf.constant(uint8, tf.float32) / 255.0).numpy()[..., 1:]


def test_strength_one_is_transfer_and_keep_colors_takes_the_contents_colours(served):
    model = tf.saved_model.load(str(served[2]))
    x, a = tf.constant(images(2)), tf.constant([0, 2], tf.int32)
    transfer = model.signatures["transfer"](image=x, artist_id=a)["image"].numpy()
    strong = model.signatures["transfer_with_strength"](
        image=x, artist_id=a, strength=tf.ones([2]), keep_colors=tf.zeros([2])
    )["image"].numpy()
    assert np.abs(strong.astype(int) - transfer).max() <= 1
    own = model.signatures["render"](
        content=model.signatures["encode_content"](image=x)["content_mean"],
        style=model.signatures["encode_style"](image=x)["style"],
        noise=tf.zeros([2, 4]),
        image=x,
        keep_colors=tf.zeros([2]),
    )["png_bytes"]
    own = np.stack([tf.io.decode_png(png).numpy() for png in own.numpy()])
    zero = model.signatures["transfer_with_strength"](
        image=x, artist_id=a, strength=tf.zeros([2]), keep_colors=tf.zeros([2])
    )["image"].numpy()
    assert np.abs(zero.astype(int) - own).max() <= 1  # strength 0: the content's own style
    kept = model.signatures["transfer_with_strength"](
        image=x, artist_id=a, strength=tf.ones([2]), keep_colors=tf.ones([2])
    )["image"].numpy()
    # a, b come from the input (up to the gamut clip and uint8 rounding); the plain transfer's colours do not
    assert (
        np.abs(lab_ab(kept) - lab_ab(x.numpy())).mean()
        < 0.25 * np.abs(lab_ab(transfer) - lab_ab(x.numpy())).mean()
    )


def test_gadn_strength_runs_from_the_source_artists_style(tiny_gadn_export):
    model = tf.saved_model.load(str(tiny_gadn_export / "gadn" / "1"))
    x = tf.constant(images(2, 32))
    source, target = tf.constant([1, 3], tf.int32), tf.constant([2, 0], tf.int32)

    def strength(s):
        return model.signatures["transfer_with_strength"](
            image=x,
            artist_id=target,
            source_artist_id=source,
            strength=tf.fill([2], s),
            keep_colors=tf.zeros([2]),
        )["image"]

    transfer = model.signatures["transfer"]
    assert (
        np.abs(
            strength(1.0).numpy().astype(int) - transfer(image=x, artist_id=target)["image"].numpy()
        ).max()
        <= 1
    )
    assert (
        np.abs(
            strength(0.0).numpy().astype(int) - transfer(image=x, artist_id=source)["image"].numpy()
        ).max()
        <= 1
    )
    names = model.signatures["artists"](row=tf.constant([0]))["artist"].numpy()[0]
    assert [n.decode() for n in names] == ["artist_00", "artist_01", "artist_02", "artist_03"]


def test_page_redraws_on_slider_moves_and_reference_uploads(
    served, driver, tmp_path, record_property
):
    explorer = served[0]
    driver.get(f"http://127.0.0.1:{explorer.port}/")
    browser.wait_for_render(driver, 0)
    first = browser.picture(driver)
    assert len(driver.find_elements("css selector", "#drawings img")) > 0
    assert (
        len(driver.find_elements("css selector", "#dims input[type=range]")) == 4
    )  # d_style sliders

    # mouse: drag the first style dimension's slider to its right end
    slider = driver.find_element("id", "dim-0")
    before = browser.renders(driver)
    ActionChains(driver).click_and_hold(slider).move_by_offset(
        slider.size["width"] // 2 - 1, 0
    ).release().perform()
    browser.wait_for_render(driver, before)
    dragged = browser.picture(driver)
    assert dragged != first
    assert float(driver.find_element("id", "dim-0").get_attribute("value")) >= 4.5

    # a reference drawing: its style replaces the artist's
    reference = tmp_path / "reference.png"
    reference.write_bytes(encode_png(images(1, 48, seed=9)[0]))
    before = browser.renders(driver)
    driver.find_element("id", "reference-files").send_keys(str(reference))
    browser.wait_for_render(driver, before)
    assert driver.find_element("id", "style-a-mode").get_attribute("value") == "references"
    assert browser.picture(driver) not in (first, dragged)
    assert driver.find_element("id", "error").get_attribute("hidden") is not None  # no error shown

    # keep colours: the content's a and b replace the picture's
    before, referenced = browser.renders(driver), browser.picture(driver)
    driver.find_element("id", "keep-colors").click()
    browser.wait_for_render(driver, before)
    assert "keep=1" in driver.current_url and browser.picture(driver) != referenced

    # a sampled content, and the 8-step strip between two styles, without an error
    before = browser.renders(driver)
    driver.find_element("id", "sample-content").click()
    browser.wait_for_render(driver, before)
    assert "content=sample" in driver.current_url and browser.picture(driver) != first
    driver.find_element("id", "style-b-mode").send_keys("random")
    browser.wait_for(driver, lambda: "b=random" in driver.current_url, what="style B")
    driver.find_element("id", "strip").click()
    browser.wait_for(
        driver,
        lambda: driver.execute_script("return window.explorer.strips") == 1,
        what="the strip",
    )
    assert driver.find_element("id", "error").get_attribute("hidden") is not None

    # keyboard, one step per picture: the slider-to-picture latency (input event -> new picture decoded)
    latencies = browser.slider_latencies(driver, "dim-1", moves=40)
    p50, p99 = np.percentile(latencies, 50), np.percentile(latencies, 99)
    record_property("slider_latency_ms_p50_p99_64px", f"{p50:.1f} / {p99:.1f}")
    print(
        f"slider-to-picture latency at 64 px: p50 {p50:.1f} ms, p99 {p99:.1f} ms ({len(latencies)} moves)"
    )
    assert len(latencies) == 40 and p50 < LATENCY_TARGET_MS
    assert browser.console_errors(driver) == []

    # the settings travel in the URL: the same link draws the same picture (uploads excepted, so an artist here)
    driver.find_element("id", "style-a-mode").send_keys("artist")
    browser.wait_for(driver, lambda: "a=artist" in driver.current_url, what="the URL to follow")
    browser.wait_for_render(driver, browser.renders(driver) - 1)
    for slider in ("strength", "dim-2"):
        before = browser.renders(driver)
        driver.find_element("id", slider).send_keys(*[Keys.ARROW_RIGHT] * 4)
        browser.wait_for_render(driver, before)
    shared, shown = driver.current_url, browser.picture(driver)
    assert "strength=1.2" in shared and "dims=" in shared
    driver.get(shared)
    browser.wait_for_render(driver, 0)
    assert browser.picture(driver) == shown
    assert browser.console_errors(driver) == []


def test_page_works_for_gadn(tiny_gadn_export, tiny_dataset, tmp_path, driver):
    """GADN has no style encoder and no noise: the page hides those and still redraws from its sliders."""
    (tmp_path / "models.config").write_text(
        f'model_config_list {{ config {{ name: "gadn" base_path: "{tiny_gadn_export / "gadn"}" '
        'model_platform: "tensorflow" } }\n'
    )
    with (
        server.LocalServer(
            str(tmp_path / "models.config"), port=0, rest_port=0, poll_seconds=0
        ) as local,
        ExplorerServer(
            f"127.0.0.1:{local.rest_port}", "gadn", str(tiny_dataset), port=0
        ) as explorer,
    ):
        driver.get(f"http://127.0.0.1:{explorer.port}/")
        browser.wait_for_render(driver, 0)
        first = browser.picture(driver)
        assert not driver.find_element("id", "noise").is_displayed()
        assert driver.find_element("id", "reference-files").get_attribute("disabled") is not None
        before = browser.renders(driver)
        driver.find_element("id", "dim-0").send_keys(Keys.END)
        browser.wait_for_render(driver, before)
        assert browser.picture(driver) != first
        assert browser.console_errors(driver) == []


def test_page_says_what_went_wrong(served, driver, tmp_path):
    explorer, local, _ = served
    driver.get(f"http://127.0.0.1:{explorer.port}/?a=artist:nobody_here")
    message = browser.wait_for(
        driver, lambda: driver.find_element("id", "error").text, what="an error"
    )
    assert message.startswith("Unknown artist") and "nobody_here" in message

    # a link that named an upload: the page draws a test drawing and says why
    driver.get(f"http://127.0.0.1:{explorer.port}/?content=upload")
    browser.wait_for_render(driver, 0)
    assert driver.find_element("id", "error").text.startswith(
        "Uploaded drawings are not part of a link"
    )

    # a content the server refuses: not an image
    driver.get(f"http://127.0.0.1:{explorer.port}/")
    browser.wait_for_render(driver, 0)
    junk = tmp_path / "notes.png"
    junk.write_bytes(b"these are not pixels")
    driver.find_element("id", "content-file").send_keys(str(junk))
    message = browser.wait_for(
        driver, lambda: driver.find_element("id", "error").text, what="an error"
    )
    assert "not a PNG, JPEG, GIF or BMP" in message or "Not an image" in message

    # an image over the server's pixel limit, refused from its PNG header alone (nothing to decode behind it)
    huge = tmp_path / "huge.png"
    header = struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0)
    huge.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", len(header))
        + b"IHDR"
        + header
        + struct.pack(">I", zlib.crc32(b"IHDR" + header))
    )
    driver.find_element("id", "content-file").send_keys(str(huge))
    browser.wait_for(
        driver, lambda: driver.find_element("id", "error").text != message, what="another error"
    )
    assert driver.find_element("id", "error").text.startswith("Image too large")

    # the serving API gone: the page says the server is down
    with ExplorerServer(
        "127.0.0.1:9", "style_space", port=0
    ) as orphan:  # port 9 (discard): nothing listens
        driver.get(f"http://127.0.0.1:{orphan.port}/")
        message = browser.wait_for(
            driver, lambda: driver.find_element("id", "error").text, what="an error"
        )
    assert message.startswith("Server down")


def test_explorer_serves_the_page_drawings_and_passes_the_api_through(served):
    explorer, local, _ = served
    base = f"http://127.0.0.1:{explorer.port}"
    page = urllib.request.urlopen(base + "/").read().decode()
    assert "/static/explorer.js" in page and "http" not in page.replace(
        "http-equiv", ""
    )  # nothing from outside
    config = json.load(urllib.request.urlopen(base + "/explorer/config.json"))
    assert config["model"] == "style_space" and config["drawings"]
    assert Image.open(
        io.BytesIO(urllib.request.urlopen(base + "/explorer/drawings/0").read())
    ).size == (32, 32)
    body = json.dumps({"signature_name": "artists", "inputs": {"row": [0]}}).encode()
    answer = json.load(
        urllib.request.urlopen(
            urllib.request.Request(base + "/v1/models/style_space:predict", body)
        )
    )
    assert answer["outputs"] == [["artist_00", "artist_01", "artist_02"]]
    with pytest.raises(urllib.error.HTTPError) as refused:  # TF Serving's own status passes through
        urllib.request.urlopen(urllib.request.Request(base + "/v1/models/nothing:predict", body))
    assert refused.value.code == 404
    with pytest.raises(urllib.error.HTTPError) as traversal:
        urllib.request.urlopen(base + "/static/..%2F..%2Fapp.py")
    assert traversal.value.code == 404


def test_client_strength_and_keep_colors(served, tmp_path):
    from tf_gadn.serving import client

    local = served[1]
    rest = client.RestClient(f"127.0.0.1:{local.rest_port}")
    image = encode_png(images(1, seed=4)[0])
    plain = client.transfer(rest, "style_space", image, artist="artist_01")
    assert client.transfer(rest, "style_space", image, artist="artist_01", strength=1.0) == plain
    assert client.transfer(rest, "style_space", image, artist="artist_01", strength=0.0) != plain
    (tmp_path / "in.png").write_bytes(image)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tf_gadn.client",
            "--rest",
            f"--server=127.0.0.1:{local.rest_port}",
            "--model=style_space",
            f"--image={tmp_path / 'in.png'}",
            "--artist=artist_01",
            "--strength=0.5",
            "--keep_colors",
            f"--out={tmp_path / 'out.png'}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    kept = np.asarray(Image.open(tmp_path / "out.png"))
    assert kept.shape == (64, 64, 3)


def test_explorer_cli_serves_the_page_for_a_running_server(served):
    local = served[1]
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tf_gadn.explorer",
            f"--server=127.0.0.1:{local.rest_port}",
            "--model=style_space",
            "--port=0",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        url = re.search(r"http://\S+/", line).group(0)
        assert (
            json.load(urllib.request.urlopen(url + "explorer/config.json"))["model"]
            == "style_space"
        )
        body = json.dumps({"signature_name": "artists", "inputs": {"row": [0]}}).encode()
        answer = json.load(
            urllib.request.urlopen(
                urllib.request.Request(url + "v1/models/style_space:predict", body)
            )
        )
        assert answer["outputs"][0][0] == "artist_00"
    finally:
        process.terminate()
        process.wait(30)
