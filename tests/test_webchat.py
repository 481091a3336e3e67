"""The web chat page (``GET /``) in a real headless Chromium, against a real ``valis serve``.

The server runs in the test's event loop on 127.0.0.1:0 (real clock: bytes cross the kernel).
The browser is Debian's ``chromium`` driven by Playwright's sync API in a worker thread; it
reaches back into the server's loop with ``anyio.from_thread`` (to release a gated answer, or
to wait for the provider to see a cancellation). Every wait is a bounded wait for a DOM
condition or a runtime record, never a fixed sleep.

Without a browser (no ``playwright`` package, no chromium) the browser tests skip, and fail
under ``CI=true``. Screenshots go to a folder under the pytest tmp dir (or
``$VALIS_WEBCHAT_SHOTS``), printed in the output; with ``VALIS_WEBCHAT_DOCS_SCREENSHOT=1`` the 1440 px one is also written to
docs/images/webchat.png.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
import anyio.to_thread
import pytest
import sniffio

import valis_actors as va
from valis_actors.server import ServerSettings
from valis_actors.testing import Step

from .server_support import Served, make_config, serve

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore::ResourceWarning")]

ROOT = Path(__file__).resolve().parent.parent
WAIT_MS = 10_000  # every browser wait is bounded by this
DOWN = {"name": "down", "type": "scripted", "default": {"kind": "unavailable"}}
ASKED = "I just moved to Lisbon and everything feels unfamiliar."
FIRST = "Hello"
REST = FIRST + "! A new city is a lot at once. What would help most this week: the neighbourhood, the paperwork, or people?"


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)  # the real clock: a real server and a real browser


def _chromium() -> str | None:
    for name in (os.environ.get("VALIS_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and (found := shutil.which(name)):
            return found
    return None


@pytest.fixture
def chromium() -> str:
    """Debian's chromium and Playwright's Python package (no browser download)."""
    path = _chromium()
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        path = None
    if path is None:
        message = "the web chat tests need playwright (pip) and Debian's chromium (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # pytest keeps only its last three tmp dirs: $VALIS_WEBCHAT_SHOTS keeps them elsewhere.
    chosen = os.environ.get("VALIS_WEBCHAT_SHOTS")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("webchat-screenshots", numbered=False)
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nweb chat screenshots: {folder}")
    return folder


# --- a provider that streams one chunk, then waits to be released ------------------------


@va.register_provider("webchat_gate")
class GateProvider(va.BaseProvider):
    """Streams ``FIRST``, waits for ``release``, then streams the rest: two steps, in order."""

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        self.release = anyio.Event()

    async def get_response(self, request: va.ProviderRequest) -> va.ProviderResponse:
        await self.release.wait()
        return va.ProviderResponse(REST, "gate-model", va.Usage(1, 4))

    def stream_response(self, request: va.ProviderRequest) -> AsyncIterator[str | va.ProviderResponse]:
        return self._stream()

    async def _stream(self) -> AsyncIterator[str | va.ProviderResponse]:
        yield FIRST
        await self.release.wait()
        yield REST[len(FIRST):]
        yield va.ProviderResponse(REST, "gate-model", va.Usage(1, 4))


# --- driving the browser ------------------------------------------------------------------


class Page:
    """A Playwright page on the server, with the few waits the tests need."""

    def __init__(self, page: Any, url: str, backend: str) -> None:
        self.page = page
        self.url = url
        self.backend = backend

    def open(self) -> None:
        self.page.goto(self.url + "/")
        self.page.wait_for_selector("#persona:not([disabled])", timeout=WAIT_MS)

    def until(self, script: str, arg: Any = None) -> Any:
        """Wait (bounded) until ``script`` (a JS function body of ``arg``) returns a truthy value."""
        return self.page.wait_for_function(f"(arg) => {{ {script} }}", arg=arg, timeout=WAIT_MS).json_value()

    def type_and_enter(self, text: str) -> None:
        box = self.page.locator("#message")
        box.fill(text)
        box.press("Enter")

    def last_answer(self) -> Any:
        return self.page.locator("#log li.assistant").last

    def error(self) -> str:
        self.page.wait_for_selector("#error:not([hidden])", timeout=WAIT_MS)
        return str(self.page.inner_text("#error-text"))


def _in_browser(chromium: str, url: str, backend: str, steps: Callable[[Page], None], width: int = 1440) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-proxy-server"])
        try:
            context = browser.new_context(viewport={"width": width, "height": 900})
            page = context.new_page()
            page.set_default_timeout(WAIT_MS)
            steps(Page(page, url, backend))
        finally:
            browser.close()


async def _drive(chromium: str, srv: Served, steps: Callable[[Page], None]) -> None:
    with anyio.fail_after(90):
        await anyio.to_thread.run_sync(_in_browser, chromium, srv.url, sniffio.current_async_library(), steps)


def _screenshot(page: Page, shots: Path, name: str, width: int) -> Path:
    page.page.set_viewport_size({"width": width, "height": 900})
    path = shots / f"{name}-{width}-{page.backend}.png"
    page.page.screenshot(path=str(path))  # the viewport, as a person sees it
    return path


# --- the tests ----------------------------------------------------------------------------


async def test_webchat_streams_shows_who_answered_and_restores_after_reload(
    chromium: str, shots: Path, anyio_backend: str
) -> None:
    config = make_config(DOWN, {"name": "gate", "type": "webchat_gate"})
    async with serve(config) as srv:
        gate = srv.provider("gate")
        assert isinstance(gate, GateProvider)
        seen_headers: dict[str, str] = {}

        def steps(page: Page) -> None:
            page.page.on("request", lambda r: seen_headers.update(r.headers) if r.method == "POST" else None)
            page.open()
            names = page.page.locator("#persona option").all_inner_texts()
            assert {"Jane", "Sam", "Alex", "Emma"} <= {n.split(" — ")[0] for n in names}, names
            assert all(len(n.split(" — ")[1]) <= 70 for n in names), names  # name — one line
            page.page.select_option("#persona", "guide_sam")
            assert page.page.inner_text("#persona-description").strip()
            page.type_and_enter(ASKED)
            # Step one: the first chunk is on screen while the answer is still streaming.
            page.until("const a = document.querySelector('#log li.assistant.streaming .text');"
                       "return a && a.textContent === arg;", FIRST)
            assert page.page.is_disabled("#message") and page.page.is_visible("#stop")
            _screenshot(page, shots, "streaming", 375)
            _screenshot(page, shots, "streaming", 1440)
            anyio.from_thread.run_sync(gate.release.set)
            # Step two: the rest, then who answered.
            page.until("const a = document.querySelector('#log li.assistant.complete .text');"
                       "return a && a.textContent === arg;", REST)
            summary = page.last_answer().locator(".meta summary").inner_text()
            assert "Answered by gate / gate-model" in summary and "first token" in summary, summary
            assert "2 attempts" in summary, summary
            assert not page.last_answer().locator(".meta li").first.is_visible()  # collapsed
            page.last_answer().locator(".meta summary").click()
            attempts = page.last_answer().locator(".meta li").all_inner_texts()
            assert any(a.startswith("down: unavailable (down: scripted unavailable)") for a in attempts), attempts
            assert any(a.startswith("gate: success") for a in attempts), attempts
            assert not page.last_answer().locator(".fallback").count()
            assert page.page.inner_text("#session") == "Session " + seen_headers["x-session-id"]
            assert page.page.text_content("#announce") == "Sam answered: " + REST  # once, for screen readers
            assert page.page.is_enabled("#message") and not page.page.is_visible("#stop")
            _screenshot(page, shots, "conversation", 375)
            docs = _screenshot(page, shots, "conversation", 1440)
            if os.environ.get("VALIS_WEBCHAT_DOCS_SCREENSHOT") == "1":
                shutil.copyfile(docs, ROOT / "docs" / "images" / "webchat.png")
            # Reload: the conversation is still there, with the same persona picked.
            page.page.reload()
            page.page.wait_for_selector("#persona:not([disabled])")
            assert page.page.input_value("#persona") == "guide_sam"
            texts = page.page.locator("#log .text").all_inner_texts()
            assert texts == [ASKED, REST], texts
            assert page.last_answer().locator(".meta summary").inner_text() == summary
            assert page.last_answer().locator(".meta li").first.is_visible()  # still open, as left
            # Another persona has its own conversation; coming back shows Sam's again.
            page.page.select_option("#persona", "jane")
            assert page.page.locator("#log > li").count() == 0
            page.page.select_option("#persona", "guide_sam")
            assert page.page.locator("#log > li").count() == 2
            page.page.click("#new-conversation")
            assert page.page.locator("#log > li").count() == 0

        await _drive(chromium, srv, steps)
        assert seen_headers["x-session-id"].startswith("web-")
        assert "authorization" not in seen_headers
        assert srv.accepted(seen_headers["x-session-id"]) == [ASKED]


async def test_webchat_stop_and_reload_cancel_the_answer_on_the_server(chromium: str, anyio_backend: str) -> None:
    async with serve(make_config()) as srv:
        scripted = srv.scripted()
        scripted.script(Step.stall(after_chunks=1), Step.answer("after the stop"), Step.stall(after_chunks=1))

        def outcomes() -> list[str]:
            return [e.data["outcome"] for e in srv.events if e.kind == va.EventKind.ATTEMPT_FINISHED]

        async def finished(*expected: str) -> None:
            with anyio.fail_after(10):
                while outcomes() != list(expected):
                    await anyio.sleep(0.02)  # polls the runtime's record, bounded: not ordering by sleep

        def steps(page: Page) -> None:
            page.open()
            page.type_and_enter("tell me a long story")
            page.until("const a = document.querySelector('#log li.assistant.streaming .text');"
                       "return a && a.textContent.length > 0;")
            page.page.keyboard.press("Escape")  # Esc stops, like the Stop button
            page.until("return document.querySelector('#log li.assistant.stopped');")
            status = page.last_answer().locator(".status").inner_text()
            assert "Stopped" in status and "incomplete" in status, status
            assert (page.page.text_content("#announce") or "").startswith("Stopped.")
            anyio.from_thread.run(finished, "cancelled")
            # The page is usable again at once, and the next answer is complete.
            page.type_and_enter("and now?")
            page.until("const a = [...document.querySelectorAll('#log li.assistant')].pop();"
                       "return a.classList.contains('complete') && a.textContent.includes('after the stop');")
            # A reload while an answer arrives: the request ends, and the answer is kept as incomplete.
            page.type_and_enter("one more")
            page.until("const a = document.querySelector('#log li.assistant.streaming .text');"
                       "return a && a.textContent.length > 0;")
            page.page.reload()
            page.until("return document.querySelectorAll('#log li.assistant').length === 3;")
            last = page.last_answer()
            assert "incomplete" in last.get_attribute("class") and "reloaded" in last.inner_text()
            anyio.from_thread.run(finished, "cancelled", "success", "cancelled")

        await _drive(chromium, srv, steps)


async def test_webchat_shows_errors_cut_answer_too_long_and_fallback(
    chromium: str, shots: Path, anyio_backend: str
) -> None:
    async with serve(make_config(max_message_chars=200)) as srv:
        scripted = srv.scripted()
        scripted.script(Step.cut(after_chunks=1))

        def steps(page: Page) -> None:
            page.open()
            # A cut answer: what arrived stays, marked incomplete, never complete.
            page.type_and_enter("hello")
            page.until("return document.querySelector('#log li.assistant.incomplete');")
            assert "cut off" in page.error()
            answer = page.last_answer()
            assert "Incomplete answer" in answer.locator(".status").inner_text()
            assert answer.locator(".text").inner_text() != ""
            assert not answer.locator(".meta").count()
            # Reloaded, it is still incomplete.
            page.page.reload()
            page.until("return document.querySelector('#log li.assistant.incomplete');")
            # An over-long message: the server's 400, in words.
            page.open()
            page.type_and_enter("x" * 300)
            message = page.error()
            assert "400" in message and "over max_message_chars=200" in message, message
            assert "Not answered" in page.last_answer().inner_text()
            assert page.page.input_value("#message") == "x" * 300  # kept, to shorten and send again
            page.page.fill("#message", "")
            # Every provider down: the fallback answers, marked as such, with a hint.
            anyio.from_thread.run_sync(scripted.set_default, Step.unavailable())
            page.type_and_enter("anyone there?")
            page.until("const a = [...document.querySelectorAll('#log li.assistant')].pop();"
                       "return a.classList.contains('complete') && a.querySelector('.fallback');")
            hint = page.last_answer().locator(".fallback").inner_text()
            assert "Fallback answer" in hint and "ANTHROPIC_API_KEY" in hint, hint
            page.last_answer().locator(".meta summary").click()
            attempts = page.last_answer().locator(".meta li").all_inner_texts()
            assert attempts[0].startswith("scripted: unavailable (scripted: scripted unavailable)"), attempts
            assert "→ persona fallback answered" in attempts, attempts
            _screenshot(page, shots, "errors", 375)
            _screenshot(page, shots, "errors", 1440)

        await _drive(chromium, srv, steps)


async def test_webchat_unknown_persona_and_server_down(chromium: str, anyio_backend: str) -> None:
    async with serve(make_config()) as srv:

        def steps(page: Page) -> None:
            page.open()
            # A persona the server no longer has (a conversation kept from another config).
            page.page.evaluate("""() => {
                const s = document.getElementById('persona');
                const o = document.createElement('option'); o.value = 'nobody'; o.textContent = 'Nobody';
                s.append(o); s.value = 'nobody'; s.dispatchEvent(new Event('change')); }""")
            page.type_and_enter("hi")
            message = page.error()
            assert "404" in message and "unknown model 'nobody'" in message, message
            # The server goes away: the page says so.
            page.page.route("**/v1/chat/completions", lambda route: route.abort("connectionrefused"))
            page.page.select_option("#persona", "jane")
            page.type_and_enter("still there?")
            assert "Cannot reach the server" in page.error()

        await _drive(chromium, srv, steps)


async def test_webchat_asks_for_the_key_and_keeps_it_in_the_tab(chromium: str, anyio_backend: str) -> None:
    async with serve(make_config(), ServerSettings(api_keys=("sekrit-key",))) as srv:
        page_html = (await srv.http.get("/")).text
        script = (await srv.http.get("/static/app.js")).text

        def steps(page: Page) -> None:
            page.page.goto(srv.url + "/")
            page.page.wait_for_selector("#auth:not([hidden])")
            assert "401" in page.error()
            page.page.fill("#api-key", "sekrit-key")
            page.page.press("#api-key", "Enter")
            page.page.wait_for_selector("#persona:not([disabled])")
            assert page.page.is_hidden("#auth")
            assert page.page.evaluate("() => sessionStorage.getItem('valis.webchat.key')") == "sekrit-key"
            assert "sekrit-key" not in page.page.evaluate("() => JSON.stringify(localStorage)")
            page.type_and_enter("hello")
            page.until("return document.querySelector('#log li.assistant.complete');")
            assert "scripted: hello" in page.last_answer().inner_text()

        await _drive(chromium, srv, steps)
    assert "sekrit-key" not in page_html + script


# WCAG contrast of each visible text against the first opaque background behind it.
CONTRAST_JS = """() => {
  const rgb = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 :
    Math.pow((v + 0.055) / 1.055, 2.4); }; return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
  const bg = (el) => { for (; el; el = el.parentElement) { const c = rgb(getComputedStyle(el).backgroundColor);
    if (c.length === 3 || c[3] > 0) return c.slice(0, 3); } return [255, 255, 255]; };
  const worst = []; let checked = 0;
  for (const el of document.querySelectorAll('body *')) {
    if (!el.offsetParent || ![...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim())) continue;
    const style = getComputedStyle(el);
    if (el.disabled || el.closest(':disabled')) continue;  // WCAG exempts inactive controls
    const a = lum(rgb(style.color)), b = lum(bg(el)); checked += 1;
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < 4.5) worst.push(`${el.tagName}.${el.className}: ${ratio.toFixed(2)}`);
  }
  return {checked, worst};
}"""

LABELS_JS = """() => [...document.querySelectorAll('input, select, textarea, button')]
  .filter((el) => !(el.labels && el.labels.length) && !el.textContent.trim() && !el.getAttribute('aria-label'))
  .map((el) => el.id || el.outerHTML)"""


async def test_webchat_keyboard_labels_contrast_and_small_screens(chromium: str, anyio_backend: str) -> None:
    async with serve(make_config()) as srv:

        def steps(page: Page) -> None:
            for width in (375, 1440):
                page.page.set_viewport_size({"width": width, "height": 800})
                page.open()
                assert page.page.evaluate(LABELS_JS) == []
                contrast = page.page.evaluate(CONTRAST_JS)
                assert contrast["checked"] > 5 and contrast["worst"] == [], contrast
                overflow = page.page.evaluate("() => document.documentElement.scrollWidth")
                assert overflow <= width, f"horizontal scrolling at {width} px: {overflow}"
            # Keyboard only: arrows pick a persona, Shift+Enter breaks a line, Enter sends.
            page.page.focus("#persona")
            before = page.page.input_value("#persona"), page.page.inner_text("#persona-description")
            page.page.keyboard.press("ArrowDown")
            after = page.page.input_value("#persona"), page.page.inner_text("#persona-description")
            assert after[0] != before[0] and after[1] != before[1], (before, after)
            page.page.focus("#message")
            page.page.keyboard.type("first line")
            page.page.keyboard.press("Shift+Enter")
            page.page.keyboard.type("second line")
            assert page.page.input_value("#message") == "first line\nsecond line"
            assert page.page.locator("#log > li").count() == 0  # Shift+Enter did not send
            page.page.keyboard.press("Enter")
            page.until("return document.querySelector('#log li.assistant.complete');")
            assert page.page.locator("#log li.user .text").inner_text() == "first line\nsecond line"
            assert page.page.evaluate("() => document.activeElement.id") == "message"  # ready for the next
            contrast = page.page.evaluate(CONTRAST_JS)  # now with messages on screen
            assert contrast["checked"] > 10 and contrast["worst"] == [], contrast
            page.type_and_enter("and then?")
            page.until("return document.querySelectorAll('#log li.assistant.complete').length === 2;")

        await _drive(chromium, srv, steps)
        # The page sends only the new message: the server's memory of the session is the history.
        first, second = srv.scripted().calls
        assert first.history == () and second.message == "and then?"
        assert [(t.user, t.assistant) for t in second.history] == [(first.message, "scripted: " + first.message)]


async def test_webchat_through_the_valis_serve_command(chromium: str, tmp_path: Path, anyio_backend: str) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"providers": [{"name": "scripted", "type": "scripted"}], "personas_dir":
                                  str(ROOT / "personas"), "memory": {"backend": "memory"}}))
    command = [sys.executable, "-m", "valis_actors.cli", "serve", "--port", "0", "--backend", anyio_backend,
               "--config", str(config)]
    async with await anyio.open_process(command) as process:
        assert process.stderr is not None
        seen = b""
        with anyio.fail_after(20):
            while b"drains and stops" not in seen:  # the announce line, printed once it listens
                seen += await process.stderr.receive()
        url = seen.decode().split("valis serve: ")[1].split("/v1")[0]
        assert url.startswith("http://127.0.0.1:") and f"chat page at {url}/;" in seen.decode()

        def steps(page: Page) -> None:
            page.open()
            page.page.select_option("#persona", "coach_emma")
            page.type_and_enter("hi Emma")
            page.until("return document.querySelector('#log li.assistant.complete');")
            assert "scripted: hi Emma" in page.last_answer().inner_text()

        try:
            with anyio.fail_after(90):
                await anyio.to_thread.run_sync(_in_browser, chromium, url, anyio_backend, steps)
        finally:
            process.terminate()
            with anyio.fail_after(20):
                code = await process.wait()
    assert code == 0


# --- no browser needed ------------------------------------------------------------------


async def test_webchat_page_and_files_are_served_without_a_key(anyio_backend: str) -> None:
    async with serve(make_config(), ServerSettings(api_keys=("k",))) as srv:
        index = await srv.http.get("/")
        files = {name: await srv.http.get(f"/static/{name}") for name in ("app.js", "style.css")}
        missing = await srv.http.get("/static/secret.py")
        climb = await srv.http.get("/static/..%2f_app.py")
        models = await srv.http.get("/v1/models")
    assert index.status_code == 200 and index.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in index.headers["content-security-policy"]
    assert '<script src="/static/app.js"' in index.text and "http" not in index.text.split("<body>")[1]
    assert files["app.js"].headers["content-type"].startswith("text/javascript")
    assert files["style.css"].headers["content-type"].startswith("text/css")
    assert missing.status_code == 404 and json.loads(missing.text)["error"]["type"] == "not_found_error"
    assert climb.status_code == 404
    assert models.status_code == 401  # the API still needs the key; the page does not


def test_webchat_files_are_package_data() -> None:
    static = ROOT / "valis_actors" / "server" / "static"
    assert sorted(p.name for p in static.iterdir()) == ["app.js", "index.html", "style.css"]
    for path in static.iterdir():  # offline: nothing is fetched from another origin
        text = path.read_text()
        assert "//cdn" not in text and "https://" not in text and "http://" not in text, path
