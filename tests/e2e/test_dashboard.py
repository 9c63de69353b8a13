"""The dashboard in a real browser (Debian's Chromium driven by Playwright) against a real
platform with real replicas: sign in, deploy through the wizard, try a model with an uploaded
picture, jobs from dropped files, tokens revoked under a signed-in page, users kept apart.

Every page visited is saved as a screenshot (desktop, and phone for some) under
``$MODELPLANE_SCREENSHOTS`` (default ``build/screenshots``); the best are copied to ``docs/``.
"""

from __future__ import annotations

import io
import os
import re
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelplane.controlplane.platform import Platform
from tests.conftest import EXAMPLES, FIXTURE_MODELS, ROOT
from tests.integration.conftest import Harness, start_platform
from tests.polling import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

playwright_api = pytest.importorskip("playwright.async_api")
expect = playwright_api.expect

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SHOTS = Path(os.environ.get("MODELPLANE_SCREENSHOTS", ROOT / "build" / "screenshots"))
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}
SLOW = 45_000  # ms: a replica of digits trains its classifier on first load


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[Harness]:
    p = await start_platform(tmp_path / "data", history_interval=0.5, watch_interval=0.2)
    h = Harness(p)
    try:
        yield h
    finally:
        await h.http.aclose()
        await p.stop()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    assert CHROMIUM.exists(), "Debian's chromium is needed: scripts/test.sh installs it"
    async with playwright_api.async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield b
        finally:
            await b.close()


async def open_page(browser: Any, platform: Platform, viewport: dict[str, int] = DESKTOP) -> Any:
    context = await browser.new_context(viewport=viewport)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors
    await page.goto(platform.url + "/")
    return page


async def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.wait_for_timeout(100)  # let a just-replaced chart paint (a screenshot, not a sync)
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


async def sign_in(page: Any, token: str) -> None:
    await page.get_by_label("Access token").fill(token)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Deployments")).to_be_visible()


async def user_token(h: Harness, user: str) -> tuple[int, str]:
    r = await h.http.post("/api/v1/users", json={"name": user})
    assert r.status_code == 201, r.text
    r = await h.http.post("/api/v1/tokens", json={"user": user, "name": "browser"})
    assert r.status_code == 201, r.text
    return r.json()["id"], r.json()["token"]


def digit_png(index: int) -> tuple[bytes, int]:
    """A 64x64 PNG of one of scikit-learn's bundled 8x8 digits, and its label."""
    from PIL import Image
    from sklearn.datasets import load_digits

    data = load_digits()
    grid = (data.images[index] * (255 / 16)).astype("uint8")
    img = Image.fromarray(255 - grid, mode="L").resize((64, 64), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue(), int(data.target[index])


async def test_sign_in_and_deploy_echo_through_the_wizard(platform: Harness, browser: Any) -> None:
    page = await open_page(browser, platform.platform)
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await shot(page, "signin")
    await page.get_by_label("Access token").fill("mp_not-a-real-token")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_contain_text("refused")
    token = platform.platform.admin_token
    assert token
    await sign_in(page, token)
    assert token not in page.url
    assert await page.evaluate("sessionStorage.getItem('modelplane.token')") == token
    await expect(page.get_by_text("No deployments yet")).to_be_visible()
    await shot(page, "deployments-empty")

    await page.get_by_role("link", name="Deploy your first model").click()
    await page.get_by_label("Model folder", exact=True).fill(str(EXAMPLES / "nope"))
    await page.get_by_role("button", name="Check the model").click()
    await expect(page.get_by_role("alert")).to_contain_text("is not a folder")
    await page.get_by_label("Model folder", exact=True).fill(str(EXAMPLES / "echo"))
    await shot(page, "wizard-1-model")
    await page.get_by_role("button", name="Check the model").click()
    await expect(page.get_by_role("heading", name="How should it be served?")).to_be_visible()
    await expect(page.get_by_text("Nothing in memory while nobody calls it")).to_be_visible()
    await page.get_by_label("Requests per hour").fill("600")
    await page.get_by_label("Pattern").select_option("steady")
    await page.get_by_role("button", name="Recommend").click()
    advice = page.get_by_test_id("advice")
    await expect(advice).to_contain_text("Recommended: serverless", timeout=SLOW)
    await expect(advice).to_contain_text("dedicated")
    await expect(page.get_by_role("radio", name="Serverless")).to_be_checked()
    await page.get_by_role("radio", name="Dedicated").check()
    await shot(page, "wizard-2-option")
    await page.get_by_role("button", name="Next").click()
    await expect(page.get_by_label("Deployment name")).to_have_value("echo")
    await page.get_by_label("Replicas", exact=True).fill("2")
    await page.get_by_label("Memory").fill("256Mi")
    await shot(page, "wizard-3-scale")
    await page.get_by_role("button", name="Review").click()
    spec = page.get_by_test_id("spec-yaml")
    await expect(spec).to_contain_text("mode: dedicated")
    await expect(spec).to_contain_text("replicas: 2")
    await shot(page, "wizard-4-review")
    await page.get_by_role("button", name="Deploy").click()
    await expect(page.get_by_test_id("progress-state")).to_have_text("running", timeout=SLOW)
    await expect(page.get_by_text("Ready.")).to_be_visible()
    await shot(page, "wizard-5-progress")

    stored = (await platform.status("echo"))["spec"]
    assert (stored["mode"], stored["scale"]["replicas"]) == ("dedicated", 2)
    assert stored["resources"]["memory"] == 256 * 1024 * 1024
    await page.get_by_role("link", name="Deployments", exact=True).click()
    row = page.locator("tr[data-name=echo]")
    await expect(row.get_by_test_id("state")).to_have_text("running")
    await expect(row.get_by_test_id("replicas")).to_have_text("2/2")
    await shot(page, "deployments")
    phone = await open_page(browser, platform.platform, PHONE)
    await sign_in(phone, token)
    await expect(phone.locator("tr[data-name=echo]")).to_be_visible()
    await shot(phone, "phone-deployments")
    assert page.errors == [] and phone.errors == []


async def test_try_digits_with_an_uploaded_png(platform: Harness, browser: Any) -> None:
    await platform.deploy("digits", EXAMPLES / "digits")
    await platform.wait_ready("digits", timeout=60)
    for i in range(30):  # some traffic for the charts
        grid = [[(i + r + c) % 17 for c in range(8)] for r in range(8)]
        assert (await platform.predict("digits", {"image": grid})).status_code == 200
    png, label = digit_png(5)
    picture = platform.platform.settings.data_dir / "digit.png"
    picture.write_bytes(png)

    page = await open_page(browser, platform.platform)
    token = platform.platform.admin_token
    assert token
    await sign_in(page, token)
    await page.locator("tr[data-name=digits]").get_by_role("link", name="Try it").click()
    await expect(page.get_by_role("heading", name="Try digits")).to_be_visible()
    await page.get_by_label("image: file").set_input_files(str(picture))
    await expect(page.get_by_role("img", name="Preview of digit.png")).to_be_visible()
    await page.get_by_role("button", name="Run prediction").click()
    answer = page.get_by_test_id("answer-json")
    await expect(answer).to_contain_text(f'"digit": {label}', timeout=SLOW)
    curl = page.get_by_test_id("snippet-curl")
    await expect(curl).to_contain_text("-F 'image=@digit.png;type=image/png'")
    await expect(curl).to_contain_text("$MODELPLANE_TOKEN")
    await expect(page.get_by_test_id("snippet-python")).to_contain_text('files=[("image"')
    assert token not in await page.content()
    await shot(page, "try-digits")

    # the same request as the curl snippet answers the same
    r = await platform.http.post(
        "/api/v1/deployments/digits/predict", files={"image": ("digit.png", png, "image/png")}
    )
    assert r.json()["digit"] == label

    await page.get_by_role("link", name="← digits").click()
    await expect(page.get_by_role("img", name=re.compile("^Requests"))).to_be_visible()

    async def charted() -> bool:
        label_ = await page.get_by_role("img", name=re.compile("^Requests")).get_attribute(
            "aria-label"
        )
        return "no data yet" not in (label_ or "no data yet")

    await eventually(charted, timeout=10)
    await expect(page.get_by_test_id("replicas")).to_contain_text("ready")
    await shot(page, "deployment")
    await page.get_by_role("link", name="Logs").click()
    await expect(page.get_by_test_id("logs")).to_contain_text("ready in")
    await shot(page, "deployment-logs")
    await page.get_by_role("link", name="Settings").click()
    await expect(page.get_by_role("heading", name="Scale")).to_be_visible()
    await shot(page, "deployment-settings")
    await page.get_by_label("Target").select_option("compose")
    async with page.expect_download() as info:
        await page.get_by_role("button", name="Download").click()
    exported = Path(await (await info.value).path())
    with zipfile.ZipFile(exported) as z:
        assert any(n.endswith("compose.yaml") for n in z.namelist()), z.namelist()
    await page.get_by_role("button", name="Delete deployment…").click()
    dialog = page.get_by_role("dialog")
    await dialog.get_by_label("Type digits to confirm").fill("digit")
    await dialog.get_by_role("button", name="Delete").click()
    assert (await platform.http.get("/api/v1/deployments/digits")).status_code == 200
    await dialog.get_by_label("Type digits to confirm").fill("digits")
    await dialog.get_by_role("button", name="Delete").click()
    await expect(page.get_by_text("No deployments yet")).to_be_visible()
    assert (await platform.http.get("/api/v1/deployments/digits")).status_code == 404
    assert page.errors == []


async def test_dropped_files_become_jobs_and_a_result_downloads(
    platform: Harness, browser: Any
) -> None:
    await platform.deploy(
        "notes", FIXTURE_MODELS / "asyncecho", input="notes-in", output="notes-out"
    )
    await platform.wait_ready("notes")
    page = await open_page(browser, platform.platform)
    token = platform.platform.admin_token
    assert token
    await sign_in(page, token)
    await page.get_by_role("link", name="Jobs & buckets").click()
    await expect(page.get_by_text("Drop files here")).to_be_visible()
    files = [(f"note-{i}.txt", f"hello {i}") for i in range(3)]
    drop = await page.evaluate_handle(
        """(files) => {
            const dt = new DataTransfer();
            for (const [name, text] of files) {
                dt.items.add(new File([text], name, {type: "text/plain"}));
            }
            return dt;
        }""",
        files,
    )
    await page.get_by_test_id("dropzone").dispatch_event("drop", {"dataTransfer": drop})
    jobs = page.get_by_test_id("jobs")
    for name, _ in files:
        await expect(jobs.locator(f"tr[data-key='{name}']")).to_contain_text(
            "succeeded", timeout=SLOW
        )
    await expect(page.get_by_text("3 of 3 done")).to_be_visible()
    await shot(page, "jobs")
    async with page.expect_download() as info:
        await jobs.locator("tr[data-key='note-1.txt']").get_by_role("button").click()
    download = await info.value
    path = await download.path()
    assert Path(path).read_bytes() == b"hello 1"[::-1]  # asyncecho answers a file reversed
    assert download.suggested_filename.startswith("note-1.txt")
    stored = await platform.http.get("/api/v1/buckets/notes-in/objects/note-2.txt")
    assert stored.content == b"hello 2"
    phone = await open_page(browser, platform.platform, PHONE)
    await sign_in(phone, token)
    await phone.goto(platform.platform.url + "/#/jobs")
    await expect(phone.get_by_test_id("jobs")).to_contain_text("succeeded")
    await shot(phone, "phone-jobs")
    assert page.errors == []


async def test_a_token_revoked_in_the_admin_page_is_refused_by_the_signed_in_page(
    platform: Harness, browser: Any
) -> None:
    r = await platform.http.post("/api/v1/users", json={"name": "ann"})
    assert r.status_code == 201
    admin = await open_page(browser, platform.platform)
    token = platform.platform.admin_token
    assert token
    await sign_in(admin, token)
    await admin.get_by_role("link", name="Admin").click()
    await expect(admin.get_by_test_id("users")).to_contain_text("ann")
    await shot(admin, "admin-users")
    await admin.get_by_role("link", name="Tokens").click()
    await admin.get_by_label("User").select_option("ann")
    await admin.get_by_label("Name").fill("laptop")
    await admin.get_by_role("button", name="Create token").click()
    secret = await admin.get_by_test_id("new-token").text_content()
    assert secret and secret.startswith("mp_")
    await expect(admin.get_by_text("shown only this once")).to_be_visible()
    await shot(admin, "admin-tokens")

    ann = await open_page(browser, platform.platform)
    await sign_in(ann, secret)
    await expect(ann.get_by_text("Signed in as")).to_contain_text("ann")
    await expect(ann.get_by_role("link", name="Admin")).to_be_hidden()

    admin.on("dialog", lambda d: d.accept())
    row = admin.get_by_test_id("tokens").locator("tr", has_text="laptop")
    await row.get_by_role("button", name="Revoke").click()
    await expect(row).to_be_hidden()
    # ann's page polls the API every 2 s: the next call is refused and she is signed out
    await expect(ann.get_by_role("heading", name="Sign in")).to_be_visible(timeout=10_000)
    await expect(ann.get_by_role("alert")).to_contain_text("Sign in again")
    assert await ann.evaluate("sessionStorage.getItem('modelplane.token')") is None
    async with httpx.AsyncClient(base_url=platform.platform.url) as http:
        r = await http.get("/api/v1/info", headers={"authorization": f"Bearer {secret}"})
        assert r.status_code == 401
    await admin.get_by_role("link", name="Node & GPUs").click()
    await expect(admin.get_by_test_id("node")).to_contain_text("CPU cores")
    await shot(admin, "admin-node")
    assert admin.errors == [] and ann.errors == []


async def test_another_user_sees_none_of_the_admins_deployments(
    platform: Harness, browser: Any
) -> None:
    await platform.deploy("echo", EXAMPLES / "echo")
    _, bob_token = await user_token(platform, "bob")
    page = await open_page(browser, platform.platform)
    await sign_in(page, bob_token)
    await expect(page.get_by_text("No deployments yet")).to_be_visible()
    assert await page.locator("tr[data-name=echo]").count() == 0
    await page.goto(platform.platform.url + "/#/d/echo")
    await expect(page.get_by_role("alert")).to_contain_text("echo")
    await expect(page.get_by_role("alert")).to_contain_text("not")
    await page.goto(platform.platform.url + "/#/jobs")
    await expect(page.get_by_text("No deployment takes jobs yet")).to_be_visible()
    await shot(page, "other-user")


async def test_local_mode_needs_no_sign_in(tmp_path: Path, browser: Any) -> None:
    p = await start_platform(tmp_path / "data", local=True)
    try:
        page = await open_page(browser, p)
        await expect(page.get_by_role("heading", name="Deployments")).to_be_visible()
        await expect(page.get_by_text("local mode")).to_be_visible()
        assert await page.get_by_label("Access token").count() == 0
    finally:
        await p.stop()


async def test_try_a_deepaas_module_and_an_oscar_service(platform: Harness, browser: Any) -> None:
    await platform.deploy("files", FIXTURE_MODELS / "deepaas_files")
    shout = {"path": str(EXAMPLES / "oscar" / "shout"), "loader": "oscar"}
    await platform.deploy("shout", Path("."), model=shout)
    await platform.wait_ready("files", timeout=60)
    await platform.wait_ready("shout", timeout=60)
    note = platform.platform.settings.data_dir / "note.txt"
    note.write_text("quiet please")
    page = await open_page(browser, platform.platform)
    token = platform.platform.admin_token
    assert token
    await sign_in(page, token)

    # DEEPaaS: webargs fields became a schema, the schema a form
    await page.goto(platform.platform.url + "/#/d/files/try")
    repeat = page.get_by_label("repeat", exact=True)
    assert (await repeat.get_attribute("min"), await repeat.get_attribute("max")) == ("1", "5")
    await page.get_by_label("mode (optional)").select_option("upper")
    await repeat.fill("2")
    await page.get_by_label("upload", exact=True).set_input_files(str(note))
    await page.get_by_role("button", name="Run prediction").click()
    await expect(page.get_by_test_id("answer-json")).to_contain_text("QUIET PLEASEQUIET PLEASE")
    await shot(page, "try-deepaas")

    # OSCAR: a script run on one input file, whose output file is the answer
    await page.goto(platform.platform.url + "/#/d/shout/try")
    await page.get_by_label("…or a file (sent as the body)").set_input_files(str(note))
    await page.get_by_role("button", name="Run prediction").click()
    await expect(page.locator(".answer pre")).to_have_text("QUIET PLEASE")
    await expect(page.get_by_test_id("snippet-curl")).to_contain_text("--data-binary @'note.txt'")
    await shot(page, "try-oscar")
    assert page.errors == []


async def test_a_model_folder_uploaded_as_a_zip_deploys_from_the_wizard(
    platform: Harness, browser: Any
) -> None:
    archive = platform.platform.settings.data_dir.parent / "echo.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for path in sorted((EXAMPLES / "echo").iterdir()):
            if path.is_file():
                z.write(path, f"my-echo/{path.name}")
    page = await open_page(browser, platform.platform)
    token = platform.platform.admin_token
    assert token
    await sign_in(page, token)
    await page.goto(platform.platform.url + "/#/deploy")
    await page.get_by_role("radio", name="Upload a model folder as a zip").check()
    await page.get_by_label("Zip archive").set_input_files(str(archive))
    await page.get_by_role("button", name="Check the model").click()
    await expect(page.get_by_text("/uploads/admin/")).to_be_visible()
    await page.get_by_role("button", name="Next").click()
    await page.get_by_label("Deployment name").fill("zipped")
    await page.get_by_role("button", name="Review").click()
    await expect(page.get_by_test_id("spec-yaml")).to_contain_text("/my-echo")
    await page.get_by_role("button", name="Deploy").click()
    # serverless by default: deployed at zero, ready for its first request
    await expect(page.get_by_text("Deployed: at zero until the first request.")).to_be_visible(
        timeout=SLOW
    )
    r = await platform.predict("zipped", {"from": "a zip"})
    assert (r.status_code, r.json()) == (200, {"from": "a zip"})
    assert page.errors == []
